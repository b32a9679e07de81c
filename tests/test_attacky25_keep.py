"""Attacks on ``train.keep_local`` (trainer/local_retention.py): an older local epoch file
goes only while Drive holds its bytes, verified. The real DriveFolder (PyDrive2 stack)
against the emulator; the retention driven as the writer drives it after each push
(``pushed`` with what the push sent, then ``apply``): no training run."""
from __future__ import annotations

import os

from _checkpoints import RUN, save

SPEC = "drive:Models/ka25/logs"


def _epochs(*numbers: int) -> set[str]:
    return {f"epoch_{e:03d}.{x}" for e in numbers for x in ("pt", "json")}


def _here(logs) -> set[str]:
    return {n for n in os.listdir(logs) if n.startswith("epoch_")}


def _push(keep, drive) -> None:
    """What the writer does after a push of files this process did not write."""
    result = drive.push()
    keep.pushed({}, set(result.uploaded), result.skipped_by_policy)


def test_an_epoch_file_rewritten_after_drive_verified_it_stays(
        emulator, drive_env, local_state, tmp_path):
    """epoch_002 verified on Drive (and known so to the retention), then written again here
    with other bytes (a run sent back, the same name): it is never deleted on the old
    verification; once a push verified the new bytes, it goes."""
    from trainer.drive import DriveFolder
    from trainer.local_retention import LocalRetention

    logs = str(tmp_path / "logs")
    for e in (1, 2, 3):
        save(logs, f"epoch_{e:03d}", e, 1000.0 * e)
    drive = DriveFolder(SPEC, logs)
    keep = LocalRetention(logs, 2, drive)
    _push(keep, drive)
    assert keep.apply(upto=3, run=RUN) == ["epoch_001.pt"]
    save(logs, "epoch_002", 2, 2500.0)              # new bytes, its sidecar names them
    save(logs, "epoch_004", 4, 4000.0)
    assert keep.apply(upto=4, run=RUN) == []        # not verified yet: nothing goes
    assert _here(logs) == _epochs(2, 3, 4)
    _push(keep, drive)
    assert keep.apply(upto=4, run=RUN) == ["epoch_002.pt"]


def test_a_copy_trashed_on_drive_after_it_was_verified_is_sent_again_before_it_goes(
        emulator, drive_env, local_state, tmp_path):
    """The user trashes Drive's copy of epoch_002 after it was verified: the next push
    sends it again, and only then does the local file go; every epoch file gone from here
    has a live copy on Drive of the bytes its sidecar named."""
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder
    from trainer.local_retention import LocalRetention

    logs = str(tmp_path / "logs")
    for e in (1, 2, 3):
        save(logs, f"epoch_{e:03d}", e, 1000.0 * e)
    md5s = {f"epoch_{e:03d}.pt": ckpt.read_sidecar(os.path.join(logs, f"epoch_{e:03d}.pt")).md5
            for e in (1, 2, 3, 4)
            if os.path.exists(os.path.join(logs, f"epoch_{e:03d}.pt"))}
    drive = DriveFolder(SPEC, logs)
    keep = LocalRetention(logs, 2, drive)
    _push(keep, drive)
    keep.apply(upto=3, run=RUN)
    theirs = next(f for f in emulator.files() if f["title"] == "epoch_002.pt")
    emulator.store.update_meta(theirs["id"], {"labels": {"trashed": True}})
    save(logs, "epoch_004", 4, 4000.0)
    _push(keep, drive)
    assert keep.apply(upto=4, run=RUN) == ["epoch_002.pt"]
    live = {f["title"]: f["md5Checksum"] for f in emulator.files()
            if not f["labels"]["trashed"] and f["title"].endswith(".pt")}
    assert {n: live.get(n) for n in ("epoch_001.pt", "epoch_002.pt")} == \
        {n: md5s[n] for n in ("epoch_001.pt", "epoch_002.pt")}



def test_a_copy_trashed_on_drive_while_listings_lag_is_not_taken_for_verified(
        emulator, drive_env, local_state, tmp_path):
    """As above, but Drive's listing still shows the trashed copy (listings lag): the push
    finds it "unchanged" and sends nothing. The local epoch_002 stays (read by id, Drive's
    copy is in the trash) until a push sent it again; then it goes."""
    from trainer.drive import DriveFolder
    from trainer.local_retention import LocalRetention

    logs = str(tmp_path / "logs")
    for e in (1, 2, 3):
        save(logs, f"epoch_{e:03d}", e, 1000.0 * e)
    drive = DriveFolder(SPEC, logs)
    keep = LocalRetention(logs, 2, drive)
    _push(keep, drive)
    keep.apply(upto=3, run=RUN)
    emulator.faults.lag_listing(deleted=4, titles=r"^epoch_002\.pt$")
    theirs = next(f for f in emulator.files() if f["title"] == "epoch_002.pt")
    emulator.store.update_meta(theirs["id"], {"labels": {"trashed": True}})
    save(logs, "epoch_004", 4, 4000.0)
    _push(keep, drive)
    assert keep.apply(upto=4, run=RUN) == []
    assert _here(logs) == _epochs(2, 3, 4)
    emulator.faults.lag_listing()            # listings current again: the next push sends it
    emulator.faults.clear()
    _push(keep, drive)
    assert keep.apply(upto=4, run=RUN) == ["epoch_002.pt"]
    assert [f["md5Checksum"] for f in emulator.files() if f["title"] == "epoch_002.pt"
            and not f["labels"]["trashed"]] == [theirs["md5Checksum"]]
