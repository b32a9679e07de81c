"""lastkeep32: a state kept in /tmp when the run folder did not take it goes to Drive too.

The run folder's disk full as the LAST epoch's checkpoint is written (attackstop32), or a
stop's save that failed there: the state, still in memory, was kept in
``/tmp/trainer-rescued-…`` and the line named that path only. With ``drive.logs`` set, that
state was nowhere else: on Colab /tmp is gone at the next disconnect, and the trained epoch
with it, though Drive was reachable. Now it is sent to ``drive.logs`` alone (each file
verified: :meth:`trainer.drive.DriveFolder.send_alone`) within the final flush's bound (a
stop's: its grace), the line says so and the temporary copy is removed; ``--resume auto`` on
a fresh machine goes on from it. Drive refusing it: the line names the /tmp copy, kept, and
why.

A real tmpfs that fills (tests/_tmpfs.py), the real save policy, resume and DriveFolder
against the emulator; tiny_config."""
from __future__ import annotations

import os
import tempfile
import time
from types import SimpleNamespace


from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from _drivemount import working_drive_mount  # noqa: F401  (fixture)
from _save_policy import epoch_1_on_drive, last_epoch_ends, sigterm_at_iteration_3
from _tmpfs import small_disk  # noqa: F401  (fixture)
from drivestage.localfs import file_md5
from test_attack18_train import _fill
from test_train28_hung_disk import _policy
from trainer import checkpoint as ckpt
from trainer.state import Position

SPEC = "drive:Models/lk32/run"


def _on_drive(drive) -> dict[str, str]:
    """name -> md5 of every file in the run's Drive folder."""
    store = drive._store
    return {e.name: (e.md5 or "").lower() for e in store.list(store.resolve("Models/lk32/run"))}


def _left() -> list[str]:
    return sorted(n for n in os.listdir(tempfile.gettempdir()) if n.startswith("trainer-"))


def _last_epoch_on_a_full_disk(tiny_config, small_disk, then=lambda: None, spec=SPEC):
    """Epoch 1 saved and verified on Drive; the disk fills (and ``then()``); epoch 2 (the
    last) cannot be written. The run's end: its SaveError, the logs folder, the Drive
    folder."""
    from trainer.drive import DriveFolder

    logs = small_disk(64 << 20) / "logs"
    drive = DriveFolder(spec, str(logs))
    run, writer, saver = _policy(tiny_config, logs, drive)
    try:
        epoch_1_on_drive(run, writer, saver)
        assert writer.verified("epoch_001.pt")
        _fill(str(logs))
        then()
        ended = last_epoch_ends(run, saver)
    finally:
        writer.close()
    return str(ended), logs, drive


def test_the_last_epoch_kept_on_a_full_disk_is_verified_on_drive_and_resumed_from(
        emulator, drive_env, local_state, tiny_config, small_disk, tmp_path):
    """The line said ``its state is saved in /tmp/trainer-rescued-…/epoch_002.pt on this
    machine`` only; Drive, reachable, got nothing. Now Drive holds epoch_002.pt and its
    sidecar, verified, the /tmp copy is gone, and a fresh machine's ``--resume auto`` takes
    epoch 2 (not epoch_001.pt, older, there too)."""
    from trainer import distributed
    from trainer.drive import DriveFolder
    from trainer.resume import choose

    text, logs, drive = _last_epoch_on_a_full_disk(tiny_config, small_disk)
    assert text == (
        f"could not write the checkpoint of epoch 2 (last.pt, epoch_002.pt) in {logs}: "
        f"[Errno 28] No space left on device; its state is sent to {SPEC}/epoch_002.pt from "
        f"a temporary folder of this machine instead and verified there (the temporary copy "
        f"is removed): free some space, then --resume auto goes on from it"), text
    assert _left() == []
    there = _on_drive(drive)
    assert {"epoch_001.pt", "epoch_001.json", "epoch_002.pt", "epoch_002.json"} <= set(there)
    # A fresh machine: an empty run folder, the same drive.logs.
    fresh = tmp_path / "fresh"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(fresh)))
    start = choose(cfg, "auto", distributed.env_info(), DriveFolder(SPEC, str(fresh)))
    assert start.where == f"{SPEC}/epoch_002.pt" and start.path == str(fresh / "epoch_002.pt")
    assert file_md5(start.path) == there["epoch_002.pt"]
    side = ckpt.read_sidecar(start.path)
    assert side.md5 == there["epoch_002.pt"] and (side.epoch, side.iteration) == (2, 4)
    loaded = ckpt.load_checkpoint(start.path)
    assert (loaded["epoch"], loaded["iteration"]) == (2, 4)


def test_the_last_epoch_drive_refuses_is_kept_on_this_machine_and_said(
        emulator, drive_env, local_state, fast_retries, tiny_config, small_disk):
    """Drive refusing the copy (its quota): the line names the /tmp copy, kept, and why."""
    text, logs, drive = _last_epoch_on_a_full_disk(
        tiny_config, small_disk, then=lambda: emulator.faults.inject(
            "POST", r"/upload/", reason="storageQuotaExceeded", times=None))
    head = (f"could not write the checkpoint of epoch 2 (last.pt, epoch_002.pt) in {logs}: "
            "[Errno 28] No space left on device; its state is saved in ")
    assert text.startswith(head), text
    path = text[len(head):].split(" ", 1)[0]
    rest = text[len(head) + len(path):]
    assert rest.startswith(f" on this machine, not sent to {SPEC} (Not enough Drive storage"), text
    assert rest.endswith(f"): free some space, then --resume {path} goes on from it (copy it "
                         "off this machine while it lasts)"), text
    assert _left() == [os.path.basename(os.path.dirname(path))]
    side = ckpt.read_sidecar(path)
    assert side.md5 == file_md5(path) and (side.epoch, side.iteration) == (2, 4)
    assert "epoch_002.pt" not in _on_drive(drive)


def test_the_last_epoch_copied_into_a_drive_mount_keeps_its_copy_here(
        local_state, tiny_config, small_disk, working_drive_mount):
    """``drive.logs`` in Colab's Drive mount: the copy there is in the machine's cache until
    the mount sends it (lost with the machine too, mount30), so the /tmp copy stays, named."""
    mount = working_drive_mount
    spec = str(mount.point / "MyDrive" / "lk32")
    text, logs, _ = _last_epoch_on_a_full_disk(tiny_config, small_disk, spec=spec)
    head = (f"could not write the checkpoint of epoch 2 (last.pt, epoch_002.pt) in {logs}: "
            "[Errno 28] No space left on device; its state is saved in ")
    assert text.startswith(head), text
    path = text[len(head):].split(" ", 1)[0]
    assert text == (head + f"{path} on this machine and copied into {spec} (a Google Drive "
                    "mount: it reaches Drive once the mount sends it): free some space, then "
                    f"--resume {path} goes on from it (copy it off this machine while it lasts)")
    assert _left() == [os.path.basename(os.path.dirname(path))]
    assert mount.cached()["MyDrive/lk32/epoch_002.pt"] == open(path, "rb").read()


def _stop_with_a_folder_in_the_way(tiny_config, tmp_path, grace=5.0, then=lambda: None):
    """Epoch 1 saved and verified on Drive; a folder named as the stop's autosave stands in
    the run folder (its write fails, not for a full disk: no copy elsewhere races it); a
    SIGTERM at iteration 3. The stop's TrainingInterrupted, and the Drive folder."""
    from trainer.drive import MIRROR_EXCLUDE, DriveFolder

    logs = tmp_path / "logs"
    # (The mirror leaves that folder out: sent, Drive held a folder of the stop save's name,
    # and a checkpoint is not sent beside one, as push refuses to: trainlefts46.)
    drive = DriveFolder(SPEC, str(logs), exclude=(*MIRROR_EXCLUDE, "autosave_00000003.pt"))
    run, writer, saver = _policy(tiny_config, logs, drive)
    run.stop.grace_s = grace
    try:
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        assert writer.wait_pushed(writer.push_soon(), time.monotonic() + 30)
        os.makedirs(logs / "autosave_00000003.pt")
        then()
        stopped = sigterm_at_iteration_3(run, saver)
    finally:
        writer.close()
    assert stopped.exit_code == 143
    return stopped, drive


def test_a_stop_save_the_run_folder_refuses_is_verified_on_drive(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """A stop's save the run folder refused for another reason than a full disk: kept in
    /tmp only, though ``drive.logs`` was set. Now sent there and verified."""
    stopped, drive = _stop_with_a_folder_in_the_way(tiny_config, tmp_path)
    text = str(stopped)
    head = "stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt could not be written ("
    assert text.startswith(head) and "Is a directory" in text, text
    assert text.endswith(
        f"); its state is sent to {SPEC}/autosave_00000003.pt from a temporary folder of this "
        f"machine instead and verified there (the temporary copy is removed): --resume auto "
        f"goes on from it"), text
    assert _left() == []
    there = _on_drive(drive)
    assert {"autosave_00000003.pt", "autosave_00000003.json"} <= set(there)
    from trainer.drive import DriveFolder

    newest = max(DriveFolder(SPEC, str(tmp_path / "fresh")).checkpoints(),
                 key=lambda c: c.sidecar.progress)
    assert (newest.name, newest.sidecar.md5) == ("autosave_00000003.pt",
                                                 there["autosave_00000003.pt"])


def test_a_stop_save_drive_does_not_take_within_the_grace_is_named_on_this_machine(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """Drive slower than the grace: the line names the /tmp copy, kept, and the bound."""
    stopped, drive = _stop_with_a_folder_in_the_way(
        tiny_config, tmp_path, grace=0.5,
        then=lambda: emulator.faults.latency(3.0, path=r"^/upload/", times=1))
    text = str(stopped)
    kept = "; its state is saved in "
    path = text.split(kept, 1)[1].split(" ", 1)[0]
    assert text.endswith(
        f"{kept}{path} on this machine, not yet verified on {SPEC} within train.grace_seconds "
        f"(0.5 s): --resume {path} goes on from it (copy it off this machine while it lasts)"), text
    assert _left() == [os.path.basename(os.path.dirname(path))]
    side = ckpt.read_sidecar(path)
    assert side.md5 == file_md5(path) and (side.epoch, side.iteration) == (1, 3)
