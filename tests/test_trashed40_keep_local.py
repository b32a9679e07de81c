"""trashed40: the user trashes a training run's logs folder on Drive while the run pushes to
it (``drive.logs`` with ``train.keep_local``). At the next push the folder the path led to
is in the trash: the push says so once, makes the path anew and sends every file there
again; the run's local epoch files go only once a live copy of their bytes is on Drive
(read by id: one in the trash is no copy), never on the strength of the copies in the
trash, which Drive empties 30 days later. The real DriveFolder (PyDrive2 stack) against
the emulator, driven as the writer drives it after each push (tests/test_attacky25_keep.py),
the trashing landing at a chosen request through a proxy."""
from __future__ import annotations

import logging
import os

from _checkpoints import RUN, save
from _proxy import Reply

SPEC = "drive:Models/tr40/logs"


def _here(logs) -> set[str]:
    return {n for n in os.listdir(logs) if n.startswith("epoch_") and n.endswith(".pt")}


def _push(keep, drive) -> None:
    result = drive.push()
    keep.pushed({}, set(result.uploaded), result.skipped_by_policy)


def _live(emulator) -> dict[str, str]:
    return {f["title"]: f["md5Checksum"] for f in emulator.files()
            if not f["labels"]["trashed"] and f["title"].endswith(".pt")}


def _md5s(logs) -> dict[str, str]:
    from trainer import checkpoint as ckpt
    return {n: ckpt.read_sidecar(os.path.join(logs, n)).md5 for n in _here(logs)}


def _gone_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and (
        "trash" in r.getMessage() or "no longer at its path" in r.getMessage())]


def test_a_logs_folder_trashed_between_pushes_is_made_anew_and_said_once(
        emulator, penv, proxy, tmp_path, caplog):
    from trainer.drive import DriveFolder
    from trainer.local_retention import LocalRetention

    logs = str(tmp_path / "logs")
    for e in (1, 2, 3):
        save(logs, f"epoch_{e:03d}", e, 1000.0 * e)
    drive = DriveFolder(SPEC, logs)
    keep = LocalRetention(logs, 2, drive)
    _push(keep, drive)
    assert keep.apply(upto=3, run=RUN) == ["epoch_001.pt"]
    sent = _md5s(logs)
    emulator.store.set_trashed(emulator.find("Models/tr40/logs")["id"], True)
    save(logs, "epoch_004", 4, 4000.0)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _push(keep, drive)
        said = _gone_lines(caplog)
        assert len(said) == 1 and "no longer at its path" in said[0], said
        # Every local file had a live copy sent again before epoch_002 went.
        assert keep.apply(upto=4, run=RUN) == ["epoch_002.pt"]
        assert {n: _live(emulator).get(n) for n in sent} == sent
        caplog.clear()
        _push(keep, drive)   # (the next period: nothing more to say)
        assert _gone_lines(caplog) == []


def test_a_logs_folder_trashed_mid_push_leaves_no_local_file_whose_only_copy_is_trashed(
        emulator, penv, proxy, tmp_path, caplog):
    """The folder goes to the trash as the push's first upload lands: that push sends again
    into the path made anew (once); no local epoch file goes whose bytes are not live on
    Drive, though the push that sent them into the trash had verified them there."""
    from trainer.drive import DriveFolder
    from trainer.local_retention import LocalRetention

    logs = str(tmp_path / "logs")
    save(logs, "epoch_001", 1, 1000.0)
    drive = DriveFolder(SPEC, logs)
    keep = LocalRetention(logs, 1, drive)
    _push(keep, drive)
    folder = emulator.find("Models/tr40/logs")["id"]
    for e in (2, 3, 4):
        save(logs, f"epoch_{e:03d}", e, 1000.0 * e)
    sent = _md5s(logs)

    def trash(status: int, headers: dict, body: bytes) -> Reply:
        if status in (200, 201):
            emulator.store.set_trashed(folder, True)
        return Reply(status, headers, [body])
    proxy.on("PUT", r"^/upload/", trash, times=1)
    uploads = proxy.count("POST", r"^/upload/")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _push(keep, drive)
    said = _gone_lines(caplog)
    assert len(said) == 1 and "went to the trash while this push wrote into it" in said[0], \
        said
    # The checkpoints under way as it was trashed (jobs=4: all three) landed in the trash;
    # no sidecar went there (the folders are checked before sidecars), then all 8 again.
    trashed = sorted(f["title"] for f in emulator.files()
                     if f["labels"]["trashed"] and f["title"].startswith("epoch_"))
    assert trashed == ["epoch_001.json", "epoch_001.pt", "epoch_002.pt", "epoch_003.pt",
                       "epoch_004.pt"]
    assert proxy.count("POST", r"^/upload/") - uploads == 3 + 8
    removed = keep.apply(upto=4, run=RUN)
    assert removed == ["epoch_001.pt", "epoch_002.pt", "epoch_003.pt"]
    live = _live(emulator)
    assert {n: live.get(n) for n in sent} == sent   # every one of them live, as here
