"""The removals a stop cut before their answer came are said "the <command> stopped"
(leftovers40): the line said "the push stopped" for a Ctrl-C in ``prune`` too, where there is
no push. The real stack against the emulator; the batch's first answer is lost (a dropped
connection, Drive did the deletes), and a Ctrl-C (``_thread.interrupt_main``) comes as its
retry is about to go."""
from __future__ import annotations

import _thread
import logging

import pytest

from _checkpoints import save
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

FOLDER = "Models/logs"
T0 = 1764600000.0


def _interrupted_at_the_retry(monkeypatch, emulator):
    """``batches.call_many`` (the removals') as it is, its first request's answer lost, and
    a Ctrl-C before its second request (the retry)."""
    from drivestage.drive import store_removals

    original = store_removals.batches.call_many

    def call_many(transport, wanted, verb, sent=None, before=None, out=None, **more):
        if verb not in ("delete", "trash"):   # (the checks' batch goes as it is)
            return original(transport, wanted, verb, sent, before=before, out=out, **more)
        asked: list[int] = []

        def first_then_ctrl_c() -> None:
            asked.append(1)
            if len(asked) == 1:
                emulator.faults.drop("POST", r"/batch", times=1)
            if len(asked) == 2:
                _thread.interrupt_main()   # (raised in this thread at once)
            if before is not None:
                before()
        return original(transport, wanted, verb, sent, before=first_then_ctrl_c, out=out, **more)
    monkeypatch.setattr(store_removals.batches, "call_many", call_many)


def test_a_ctrl_c_in_prune_says_the_prune_stopped(emulator, drive_env, local_state, tmp_path,
                                                   monkeypatch, caplog):
    from drivestage.pruning import prune
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push

    src = str(tmp_path / "logs")
    for n in (1, 2, 3):
        save(src, f"epoch_{n:03d}", n, T0 + n)
    push(src, f"drive:{FOLDER}", jobs=1)
    _interrupted_at_the_retry(monkeypatch, emulator)
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(KeyboardInterrupt):
        prune(f"drive:{FOLDER}", RetentionPolicy(keep_last=1))
    lost = [r.getMessage() for r in caplog.records if "may be gone" in r.getMessage()]
    assert lost == [f"the removal of drive:{FOLDER}/epoch_001.pt and drive:{FOLDER}/epoch_002.pt "
                    "was sent, and "
                    "the prune stopped before their answer came: they may be gone"], lost
    assert sorted(f["title"] for f in emulator.files() if not f["labels"]["trashed"]
                  and f["mimeType"] != "application/vnd.google-apps.folder") == [
        "epoch_001.json", "epoch_002.json", "epoch_003.json", "epoch_003.pt"]   # (Drive did
    # the checkpoints' deletes; their sidecars go after them: the Ctrl-C came first)


@pytest.mark.parametrize("command", ["push", "mirror"])
def test_a_ctrl_c_in_a_push_or_a_mirrors_period_says_which(emulator, drive_env, local_state,
                                                           tmp_path, monkeypatch, caplog,
                                                           command):
    """``mirror``'s period (its ``--delete`` here) runs in the mirror's own thread: said so
    there; a push (and the trainer's) as before."""
    import threading

    from drivestage.cli.mirror import _push_and_say
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    push(str(src), "drive:runs/exp", jobs=1)
    for name in ("a.txt", "b.txt"):
        emulator.add_file(f"runs/exp/{name}", name.encode())
    _interrupted_at_the_retry(monkeypatch, emulator)
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(KeyboardInterrupt):
        if command == "mirror":
            _push_and_say(threading.Event(), [], str(src), "drive:runs/exp", delete=True,
                          jobs=1)
        else:
            push(str(src), "drive:runs/exp", delete=True, jobs=1)
    lost = [r.getMessage() for r in caplog.records if "may be gone" in r.getMessage()]
    assert lost == ["the removal of drive:runs/exp/a.txt and drive:runs/exp/b.txt was sent, "
                    f"and the {command} stopped before their answer came: they may be gone"]
