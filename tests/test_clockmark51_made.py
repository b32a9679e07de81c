"""clockmark51: Drive's clock bounded by the ``createdDate`` of what drivestage made.

clock51 left a one-shot ``push`` / ``prune`` (nothing written yet by the process when it
judges the sidecars) taking Drive's clock from the newest ``createdDate`` it read: a notes
file another client sent into the run folder with a ``createdDate`` five days ahead (rclone
``-M``), with a proxy's ``Date`` as far ahead, made a local sidecar dated three days ahead
"saved last", and ``--keep-last 1`` deleted the run's real newest checkpoint.

Now every file drivestage uploads and every folder it makes carries a PRIVATE property of
this app's (``drivestage.drive.made_mark``), and where items so marked were read, their
``createdDate`` (Drive's: drivestage sends none) bounds Drive's clock, not another client's
item. Where none was read (a run of another OAuth client's, or pushed before the mark:
clock49's scene) the newest of any, as before (clock51's strict xfail stands there).

The real PyDrive2 stack against the emulator; "a later process" is this one with the
stamps of its own writes forgotten (server_clock's state is per process)."""
from __future__ import annotations

import time

import pytest

from drivestage.drive import server_clock
from drivestage.retention import RetentionPolicy
from drivestage.upload_tree import push
from _checkpoints import save
from _cli import run
from test_clock51_created_ahead import AHEAD, _left, _rclone_m
from test_sidecar_saved import FOLDER, T0, _live, _put


def _later_process(monkeypatch) -> None:
    """What this process heard and read of Drive's clock, forgotten (a new process)."""
    for name, value in (("_behind", None), ("_pending_reading", None), ("_dated", True),
                        ("_stamped", None), ("_stamped_made", None), ("_wrote", None)):
        monkeypatch.setattr(server_clock, name, value)


def test_a_one_shot_push_into_a_folder_drivestage_made_is_not_fooled(
        emulator, store, env, drive_env, local_state, monkeypatch):
    store.make_folders(FOLDER)   # (an earlier push made the run folder: marked)
    _later_process(monkeypatch)
    src = str(env / "logs")
    honest = [save(src, f"epoch_{e:03d}", e, T0 + 60 * e, saved=T0 + 60 * e) for e in (1, 2, 3)]
    liar = save(src, "epoch-002", 10**9, T0 + 90, saved=time.time() + 3 * 86400)
    _rclone_m(emulator, store, time.time() + AHEAD)
    _later_process(monkeypatch)   # (the push: a process of its own, its own store)
    code, out, err = run("push", src, f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert _left(emulator) == {**liar, **honest[2]}, out + err


def test_a_one_shot_prune_beside_checkpoints_drivestage_pushed_is_not_fooled(
        emulator, store, env, drive_env, local_state, monkeypatch):
    src = str(env / "logs")
    honest = [save(src, f"epoch_{e:03d}", e, T0 + 60 * e, saved=T0 + 60 * e) for e in (1, 2, 3)]
    push(src, FOLDER, RetentionPolicy(keep_last=3), store=store)
    _later_process(monkeypatch)
    liar = _put(emulator, "epoch-002", 10**9, time.time() + 3 * 86400)
    _rclone_m(emulator, store, time.time() + AHEAD)
    code, out, err = run("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert _left(emulator) == {**liar, **honest[2]}, out
    assert "saved last" in out, out


def test_two_days_behind_marked_stamps_keep_the_save_times_of_others(
        emulator, store, env, drive_env, local_state, monkeypatch):
    """clock49's machine two days behind (Drive's whole clock ahead) where the run's files
    carry the mark: their stamps are Drive's, two days ahead, and the save times of the
    machine that wrote them are kept (the liar is not the one saved last)."""
    emulator.clock_offset = 2 * 86400.0
    src = str(env / "logs")
    ahead = 2 * 86400 + T0
    honest = [save(src, f"epoch_{e:03d}", e, ahead + 60 * e, saved=ahead + 60 * e)
              for e in (1, 2, 3)]
    push(src, FOLDER, RetentionPolicy(keep_last=3), store=store)
    _later_process(monkeypatch)
    liar = _put(emulator, "epoch-002", 10**9, ahead + 90)
    code, out, err = run("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert _live(emulator) == {**liar, **honest[2]}, out
    assert "saved last" in out, out


def test_what_drivestage_makes_carries_its_private_mark(emulator, store, env):
    src = str(env / "logs")
    save(src, "epoch_001", 1, T0, saved=T0)
    push(src, FOLDER, RetentionPolicy(keep_last=3), store=store)
    folder = emulator.store.get(store.make_folders(FOLDER).id)
    files = [f for f in emulator.store.files.values() if folder["id"] in f.get("parents", ())]
    for item in [folder, *files]:
        assert ("drivestage-made", "1", "PRIVATE") in \
            [(p.get("key"), p.get("value"), p.get("visibility"))
             for p in item.get("properties", ())], item
    assert sorted(f["title"] for f in files) == ["epoch_001.json", "epoch_001.pt"]


@pytest.mark.xfail(strict=True, reason="clockmark51: where this app made a folder on the way "
                   "(days old) and another OAuth client pushed the run's files (no mark this "
                   "app reads), the old folder's stamp bounds Drive's clock, not the files': "
                   "clock49's machine days behind loses its save times there")
def test_two_days_behind_an_old_folder_of_ours_and_another_clients_files(
        emulator, store, drive_env, local_state, monkeypatch):
    """The cost of the rule: the laptop (this app) made the run folder three days ago by
    Drive's clock; Colab (another OAuth client, whose PRIVATE mark this app cannot read)
    pushed the checkpoints; the laptop's clock now runs two days behind."""
    emulator.clock_offset = -86400.0
    store.make_folders(FOLDER)   # (made a day before this machine's now: three days ago)
    _later_process(monkeypatch)
    emulator.clock_offset = 2 * 86400.0
    honest = [_put(emulator, f"epoch_{e:03d}", e, 2 * 86400 + T0 + 60 * e) for e in (1, 2, 3)]
    liar = _put(emulator, "epoch-002", 10**9, 2 * 86400 + T0 + 90)
    code, out, err = run("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert _live(emulator) == {**liar, **honest[2]}, out
