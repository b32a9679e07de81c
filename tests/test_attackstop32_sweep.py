"""attackstop32: the start's sweep of this machine's temporary folder against Drive's word.

A ``trainer-stop-…`` copy of this run is removed at a start when Drive holds a checkpoint of
the run further on than it, saved later (stopleft31). That checkpoint was never loaded: one
that ``--resume auto`` passed over (its bytes match its sidecar's md5 but do not load: a
file cut short by the tool that wrote it, NaN weights) counted as the run having gone on,
and the sweep removed the only copy of the state the run could have gone on from, while the
run started from an older one.

The real save policy, resume and DriveFolder against the emulator; tiny_config."""
from __future__ import annotations

import dataclasses
import os
import tempfile

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from test_train28_hung_disk import _policy

SPEC = "drive:Models/as32/sweep"


def _left() -> dict[str, list[tuple[str, str]]]:
    """Each ``trainer-*`` folder in the temporary folder: its files' (name, md5)."""
    from drivestage.localfs import file_md5

    tmp = tempfile.gettempdir()
    return {f: sorted((n, file_md5(os.path.join(tmp, f, n))) for n in os.listdir(
        os.path.join(tmp, f))) for f in sorted(os.listdir(tmp)) if f.startswith("trainer-")}


def _on_drive(drive) -> list[tuple[str, str]]:
    """(name, md5) of every file in the run's Drive folder."""
    store = drive._store
    return sorted((e.name, (e.md5 or "").lower())
                  for e in store.list(store.resolve("Models/as32/sweep")))


def test_a_drive_checkpoint_the_resume_passed_over_does_not_supersede_the_only_copy(
        emulator, drive_env, local_state, tiny_config, tmp_path, caplog):
    """Drive: this run's epoch 1 (iteration 4), and its autosave of iteration 9, saved later,
    whose bytes are those its sidecar names but do not load. This machine: the run's stop
    copy of iteration 7, saved between them (Drive did not take it in time). ``--resume
    auto`` passes over iteration 9 and starts from epoch 1: the copy of iteration 7 is the
    state to go on from, and the start says so; it removed it ("iteration 9 is further on")."""
    from drivestage import sidecar as sidecars
    from drivestage.localfs import file_md5
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder
    from trainer.resume import _fetch_newest
    from trainer.saving import snapshot
    from trainer.state import Position

    logs = tmp_path / "logs"
    drive = DriveFolder(SPEC, str(logs))
    run, writer, saver = _policy(tiny_config, logs, drive)
    state = snapshot(run)
    elsewhere = tmp_path / "elsewhere"
    ckpt.save_checkpoint({**state, "epoch": 1, "iteration": 4, "epoch_iteration": 0},
                         str(elsewhere / "epoch_001.pt"), saved=1000.0)
    cut = ckpt.save_checkpoint({**state, "epoch": 2, "iteration": 9, "epoch_iteration": 5},
                               str(elsewhere / "autosave_00000009.pt"), saved=3000.0)
    with open(cut, "r+b") as f:   # cut short by the tool that wrote it; the sidecar says so
        f.truncate(os.path.getsize(cut) // 2)
    sidecars.write(cut, dataclasses.replace(ckpt.read_sidecar(cut), md5=file_md5(cut),
                                            size=os.path.getsize(cut)))
    up = DriveFolder(SPEC, str(elsewhere))
    up.push()
    stop = os.path.join(tempfile.gettempdir(), "trainer-stop-7", "autosave_00000007.pt")
    os.makedirs(os.path.dirname(stop))
    ckpt.save_checkpoint({**state, "epoch": 2, "iteration": 7, "epoch_iteration": 3}, stop,
                         saved=2000.0)
    before = _left()
    assert before == {"trainer-stop-7": [
        ("autosave_00000007.json", file_md5(ckpt.sidecar_path(stop))),
        ("autosave_00000007.pt", file_md5(stop))]}
    # --resume auto: iteration 9 does not load; epoch 1 does.
    start = _fetch_newest(drive, drive.checkpoints(), str(logs))
    assert start.where == f"{SPEC}/epoch_001.pt"
    run.resumed_from, run.state.pos = start.path, Position(1, 4, 0)
    try:
        with caplog.at_level("INFO", logger="trainer"):
            saver.on_fit_start(run)
            assert saver.swept.join(30)
    finally:
        writer.close()
    assert _left() == before
    said = [r.getMessage() for r in caplog.records if "trainer-stop-7" in r.getMessage()]
    assert said == [
        f"{os.path.dirname(stop)} holds this run's checkpoint of epoch 3, iteration 7, further "
        f"on than where it starts, on this machine only (an earlier stop's, not verified on "
        f"Drive in time): stop and run again with --resume {stop} to train on from it"]
    assert ("autosave_00000009.pt", file_md5(cut)) in _on_drive(drive)   # (Drive keeps it)


def test_a_folder_left_with_only_a_sidecar_by_a_cut_off_removal_is_swept(tiny_config, tmp_path):
    """A SIGKILL inside the sweep's own ``rmtree`` (or the stop's, once its copy was verified
    on Drive) can remove the checkpoint and leave its sidecar: a folder holding nothing to
    resume from, kept for good (neither a whole checkpoint nor a temporary file). A stop's
    copy whose bytes are nowhere else stays, as before."""
    from drivestage.localfs import file_md5
    from test_train28_hung_disk import _small_run
    from trainer import checkpoint as ckpt
    from trainer import stop_save
    from trainer.saving import snapshot
    from trainer.state import Position

    run = _small_run(tiny_config, tmp_path / "logs")
    state = snapshot(run)
    tmp = tempfile.gettempdir()
    cut = ckpt.save_checkpoint(state, os.path.join(tmp, "trainer-stop-cut", "autosave_00000007.pt"))
    os.remove(cut)   # (where the kill came: the checkpoint gone, its sidecar not yet)
    only = ckpt.save_checkpoint(state, os.path.join(tmp, "trainer-stop-only", "autosave_00000009.pt"))
    kept = {"trainer-stop-only": [("autosave_00000009.json", file_md5(ckpt.sidecar_path(only))),
                                  ("autosave_00000009.pt", file_md5(only))]}
    assert stop_save.sweep(str(tmp_path / "logs"), None, run.state.run, Position()).join(30)
    assert _left() == kept
