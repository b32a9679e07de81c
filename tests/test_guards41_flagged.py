"""guards41: a checkpoint on Drive whose sidecar Drive flagged as malware or spam and will not
serve to this account (another account's file: Drive honours acknowledgeAbuse only for its
owner). Whose run it is cannot be told, so a push keeps it as it is, with its sidecar ("flagged,
kept": never replaced nor removed), says so once, and goes on; retention keeps the pair too.
Before, every push and prune of the folder failed at that read with pull's advice
``pull again with --acknowledge-abuse``."""
from __future__ import annotations

import logging

import pytest

from _checkpoints import RUN, save
from _cli import run
from _drive_state import live_md5s

FOLDER = "runs/exp"
T0 = 1764600000.0


@pytest.fixture(autouse=True)
def _fast(fast_retries, local_state):
    """Backoffs of a millisecond; drivestage's state in tmp_path."""


def _theirs_flagged(emulator, tmp_path, stems=("epoch_002",), run_id="their-run") -> dict:
    """``stems`` on Drive as a collaborator's machine pushed them, each sidecar flagged and
    owned by that collaborator (shared with this account as a writer)."""
    theirs: dict = {}
    for stem in stems:
        theirs.update(save(str(tmp_path / "them"), stem, int(stem[-3:]), T0, run=run_id))
        for suffix in (".pt", ".json"):
            fid = emulator.add_file(f"{FOLDER}/{stem}{suffix}",
                                    (tmp_path / "them" / f"{stem}{suffix}").read_bytes())
            emulator.store.update(fid, modified=T0 - 600)   # (older than this run's)
            if suffix == ".json":
                emulator.set_abusive(fid)
                emulator.store.update(fid, owner="them@x.org")
                emulator.share(fid, "writer")
    return theirs


def _said(stem: str, local: str, epoch: int) -> str:
    return (f"Drive flagged drive:{FOLDER}/{stem}.json as malware or spam and does not serve "
            f"it to this account, so whose run drive:{FOLDER}/{stem}.pt is cannot be told; left "
            f"as it is, not replaced with {local} (run {RUN}, epoch {epoch}). To replace it, "
            f"remove that pair there (its owner may read it: drivestage pull "
            f"--acknowledge-abuse)")


def test_a_push_keeps_a_checkpoint_whose_sidecar_drive_will_not_serve_and_sends_the_rest(
        emulator, drive_env, tmp_path):
    theirs = _theirs_flagged(emulator, tmp_path)
    src = tmp_path / "run"
    mine = save(str(src), "epoch_001", 1, T0 + 60)
    save(str(src), "epoch_002", 2, T0 + 120)
    mine.update(save(str(src), "epoch_003", 3, T0 + 180))

    code, out, err = run("push", str(src), f"drive:{FOLDER}")
    assert code == 0, err
    assert err.splitlines() == [
        "WARNING drivestage.other_runs: " + _said("epoch_002", str(src / "epoch_002.pt"), 2),
        f"push {src} -> drive:{FOLDER}: 4 uploaded (6.1 KiB), 0 unchanged, 1 left (whose on "
        "Drive cannot be told)"]
    assert live_md5s(emulator, FOLDER) == {**mine, **theirs}


def test_a_push_with_retention_keeps_the_flagged_pair_and_prunes_the_rest(
        emulator, drive_env, tmp_path):
    """keep_last 1 would remove the older of two such pairs (neither run nor epoch can be
    read: the same unknown run): both are kept, labelled."""
    theirs = _theirs_flagged(emulator, tmp_path, ("epoch_010", "epoch_011"))
    src = tmp_path / "run"
    save(str(src), "epoch_001", 1, T0 + 60)
    mine = save(str(src), "epoch_003", 3, T0 + 180)

    code, out, err = run("push", str(src), f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert live_md5s(emulator, FOLDER) == {**mine, **theirs}

    # prune says why it stays (no local file: nothing else said it).
    code, out, err = run("prune", f"drive:{FOLDER}", "--keep-last", "1", "--dry-run")
    assert code == 0, err
    kept = [r.split(None, 3) for r in out.splitlines() if "  epoch_010." in r]
    assert kept == [
        ["keep", "2.9", "KiB", "epoch_010.pt    its sidecar is flagged by Drive (whose run it "
                               "is cannot be told)"],
        ["keep", "125", "B", "epoch_010.json  sidecar of epoch_010.pt"]], out
    assert live_md5s(emulator, FOLDER) == {**mine, **theirs}


def test_a_mirror_says_it_once_over_its_periods(emulator, drive_env, tmp_path, caplog):
    """The same store over several pushes (a mirror's, a trainer's): said at the first."""
    from drivestage.remote import open_store
    from drivestage.upload_tree import push

    theirs = _theirs_flagged(emulator, tmp_path)
    src = tmp_path / "run"
    save(str(src), "epoch_002", 2, T0 + 120)
    store = open_store(f"drive:{FOLDER}")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            result = push(str(src), store)
            assert result.unknown_run == ["epoch_002.pt"] and result.uploaded == []
    assert [r.getMessage() for r in caplog.records] == [
        _said("epoch_002", str(src / "epoch_002.pt"), 2)]
    assert live_md5s(emulator, FOLDER) == theirs


def test_a_stop_save_sent_alone_leaves_a_pair_whose_sidecar_drive_will_not_serve(
        emulator, drive_env, tmp_path):
    """The trainer's pair sent alone (a stop's save, beside a run folder whose disk hangs)
    reads the sidecar there to tell whose that name is: unread, it is not sent (as over
    another run's), in words that say why, and the pair there stays as it was."""
    from test_stopcopy36_contributor import NAME, SIDE, _both, _pair
    from trainer.drive import DriveFolder, OtherRunFile

    logs = str(tmp_path / "logs")
    _pair(logs, run="r1", weight=1.0, saved=1000.0)
    DriveFolder("drive:runs/stop", logs).push()
    side = emulator.find(f"runs/stop/{SIDE}")["id"]
    emulator.set_abusive(side)
    emulator.store.update(side, owner="them@x.org")
    emulator.share(side, "writer")
    before = live_md5s(emulator, "runs/stop")

    mine = _pair(str(tmp_path / "stop"), run="r1", weight=3.0, saved=3000.0)
    with pytest.raises(OtherRunFile) as got:
        DriveFolder("drive:runs/stop", logs).send_alone(_both(mine))
    assert str(got.value) == (
        f"it holds {NAME}, whose sidecar drive:runs/stop/{SIDE} Drive flagged as malware or "
        "spam and does not serve to this account, so whose run it is cannot be told; sent, "
        "two files of one name would be there")
    assert live_md5s(emulator, "runs/stop") == before
