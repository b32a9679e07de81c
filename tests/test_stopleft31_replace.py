"""stopleft31: a stop's save sent alone (``DriveFolder.send_alone``: its copy written in a
temporary folder, the run folder's disk too slow or hung) into a ``drive.logs`` folder that
already holds another file of that name. After a resume from an older checkpoint, a stop at
the iteration of the earlier branch's stop makes ``autosave_<iteration>.pt`` again, of other
bytes: Drive kept both files of each name for good (a push replaces them; no later push
looks at a name the run folder does not hold). Now the older pair goes once the new one is
verified, in the run's own folder only, and only when its sidecar names this run; another
run's stays. The real PyDrive2 stack against the emulator; real checkpoint files."""
from __future__ import annotations

import os
import tempfile

import pytest

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)

SPEC = "drive:Models/sl31/run"
NAME = "autosave_00000003.pt"


def _pair(folder: str, *, run: str = "r1", weight: float = 0.0, saved: float = 1000.0) -> str:
    """A stop's checkpoint of iteration 3 of ``run`` (and its sidecar) in ``folder``."""
    import torch

    from trainer import checkpoint as ckpt

    os.makedirs(folder, exist_ok=True)
    state = {"format_version": ckpt.FORMAT_VERSION, "model": {"w": torch.full((4,), weight)},
             "optimizer": {}, "epoch": 1, "iteration": 3, "epoch_iteration": 1, "config": {},
             "run": run}
    return ckpt.save_checkpoint(state, os.path.join(folder, NAME), saved=saved)


def _both(path: str) -> list[str]:
    from trainer import checkpoint as ckpt

    return [path, ckpt.sidecar_path(path)]


def _on_drive(store) -> list[tuple[str, str]]:
    """(name, md5) of every file in the run's Drive folder."""
    return sorted((e.name, (e.md5 or "").lower())
                  for e in store.list(store.resolve("Models/sl31/run")))


def _md5s(path: str) -> list[tuple[str, str]]:
    from drivestage.localfs import file_md5

    return sorted((os.path.basename(p), file_md5(p)) for p in _both(path))


def _pushed_earlier(tmp_path, run: str = "r1") -> str:
    """The earlier branch's stop at iteration 3, pushed by the run (the folder is marked as
    its run folder): the local checkpoint."""
    from trainer.drive import DriveFolder

    logs = str(tmp_path / "logs")
    old = _pair(logs, run=run)
    DriveFolder(SPEC, logs).push()
    return old


def test_a_stop_s_save_sent_alone_replaces_the_older_pair_of_its_run_of_that_name(
        emulator, drive_env, local_state, store, tmp_path):
    from trainer.drive import DriveFolder, newest_of_current_run

    old = _pushed_earlier(tmp_path)
    assert _on_drive(store) == _md5s(old)
    new = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-x"), weight=1.0, saved=2000.0)
    drive = DriveFolder(SPEC, str(tmp_path / "logs"))
    drive.send_alone(_both(new))
    assert _on_drive(store) == _md5s(new)
    newest = newest_of_current_run(drive.checkpoints())
    assert newest is not None and newest.sidecar.saved == 2000.0


def test_the_older_pair_stays_until_the_new_one_is_verified(
        emulator, drive_env, local_state, fast_retries, store, tmp_path, monkeypatch):
    """Drive refuses the new sidecar: the older pair stays whole (its checkpoint still the
    verified one), beside the new checkpoint; sent again, the new pair replaces it."""
    from drivestage.errors import DriveStageError
    from trainer.drive import DriveFolder, newest_of_current_run

    old = _pushed_earlier(tmp_path)
    new = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-x"), weight=1.0, saved=2000.0)
    drive = DriveFolder(SPEC, str(tmp_path / "logs"))
    upload = drive._store.upload

    def refuse_sidecars(path, folder, name, **kwargs):
        if name.endswith(".json"):   # (the checkpoint went; Drive then is full)
            emulator.faults.inject("POST", r"/upload/", reason="storageQuotaExceeded",
                                   times=None)
        return upload(path, folder, name, **kwargs)

    monkeypatch.setattr(drive._store, "upload", refuse_sidecars)
    with pytest.raises(DriveStageError):
        drive.send_alone(_both(new))
    assert _on_drive(store) == sorted(_md5s(old) + _md5s(new)[1:])   # (+ the new .pt)
    newest = newest_of_current_run(drive.checkpoints())
    assert newest is not None and newest.sidecar.saved == 1000.0
    monkeypatch.setattr(drive._store, "upload", upload)
    emulator.faults.clear()
    drive.send_alone(_both(new))
    assert _on_drive(store) == _md5s(new)


def test_another_run_s_pair_of_that_name_stays(emulator, drive_env, local_state, store,
                                                tmp_path):
    from trainer.drive import DriveFolder

    from trainer.drive import OtherRunFile

    old = _pushed_earlier(tmp_path, run="r0")
    new = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-x"), weight=1.0, saved=2000.0)
    # Not sent beside it either: two files of one name, of two runs (epochkeep32).
    with pytest.raises(OtherRunFile) as refused:
        DriveFolder(SPEC, str(tmp_path / "logs")).send_alone(_both(new))
    assert refused.value.run == "r0"
    assert _on_drive(store) == sorted(_md5s(old))


def test_in_a_folder_no_run_has_marked_nothing_is_removed(emulator, drive_env, local_state,
                                                          store, tmp_path):
    """The folder is no run's (never pushed into by a run, not marked): whose its files are is
    not known, and they stay."""
    from trainer.drive import DriveFolder

    old = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-a"))
    DriveFolder(SPEC, str(tmp_path / "logs")).send_alone(_both(old))
    new = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-b"), weight=1.0, saved=2000.0)
    DriveFolder(SPEC, str(tmp_path / "logs")).send_alone(_both(new))
    assert _on_drive(store) == sorted(_md5s(old) + _md5s(new))


def test_a_removal_drive_refuses_leaves_both_pairs_and_the_send_verified(
        emulator, drive_env, local_state, store, tmp_path, caplog):
    """The new pair is verified; Drive refuses the old pair's removal: said, and the send
    counts as done (the stop's line says verified), both pairs left."""
    from trainer.drive import DriveFolder, newest_of_current_run

    old = _pushed_earlier(tmp_path)
    new = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-x"), weight=1.0, saved=2000.0)
    drive = DriveFolder(SPEC, str(tmp_path / "logs"))
    for method, path in (("DELETE", None), ("POST", r"/trash")):   # (nor to the trash)
        emulator.faults.inject(method, path, reason="insufficientFilePermissions", times=None)
    with caplog.at_level("WARNING", logger="trainer"):
        drive.send_alone(_both(new))
    assert _on_drive(store) == sorted(_md5s(old) + _md5s(new))
    newest = newest_of_current_run(drive.checkpoints())
    assert newest is not None and newest.sidecar.saved == 2000.0
    said = [r.getMessage() for r in caplog.records if r.name.startswith("trainer")]
    assert len(said) == 1 and said[0].startswith(
        f"{SPEC}/{NAME} is verified on Drive, but its older copy there could not be removed ("
    ) and said[0].endswith("): two files of that name are left"), said
