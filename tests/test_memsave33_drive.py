"""memsave33: a state no disk of this machine takes goes to ``drive.logs`` straight from memory.

On Colab the run folder, /tmp and drivestage's state folder are one VM disk. Full, the
last epoch's save failed there, then its copy in /tmp (lastkeep32's fallback) on the same
disk: the line ended ``, nor on this machine ([Errno 28] …)``, and the trained state was
lost with the VM though Drive was reachable. A stop's save went the same way (its copy
"elsewhere" in /tmp: ``nor sent to … from another folder ([Errno 28] …)``). Now the state is
serialised in memory (``memfd``) and sent to Drive under the regular save's name, each file
verified by md5; ``--resume auto`` on a fresh machine goes on from exactly that state. Drive
refusing it too: one line that the state is lost, and why.

One real tmpfs that fills (tests/_tmpfs.py) holds the run folder, the temporary folder and
drivestage's state folder; the real save policy, writer, resume and DriveFolder against the
emulator (Drive); tiny_config."""
from __future__ import annotations

import os
import re
import signal
import tempfile
from types import SimpleNamespace

import pytest
import torch

from _drivemount import working_drive_mount  # noqa: F401  (fixture)
from _save_policy import epoch_1_on_drive, last_epoch_ends, sigterm_at_iteration_3
from _tmpfs import small_disk  # noqa: F401  (fixture)
from drivestage.localfs import file_md5
from test_attack18_train import _fill
from test_train28_hung_disk import _policy
from trainer import checkpoint as ckpt
from trainer.state import Position

SPEC = "drive:Models/ms33/run"
FULL = "[Errno 28] No space left on device"


@pytest.fixture
def one_disk(small_disk, local_state, monkeypatch):
    """Colab's VM disk: the run folder (``logs``), the temporary folder and drivestage's state
    folder on one small tmpfs, which ``fill()`` fills."""
    disk = small_disk(64 << 20)
    for name in ("tmp", "state"):
        (disk / name).mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(disk / "tmp"))
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(disk / "state"))
    return disk


def _on_drive(drive) -> dict[str, str]:
    """name -> md5 of every file in the run's Drive folder."""
    store = drive._store
    return {e.name: (e.md5 or "").lower() for e in store.list(store.resolve("Models/ms33/run"))}


def _saved(run, tmp_path, drive, name):
    """The state the run holds now (what its save writes), and what a fresh machine's
    ``--resume auto`` fetches from Drive: its path and the checkpoint loaded."""
    from trainer import distributed
    from trainer.drive import DriveFolder
    from trainer.resume import choose
    from trainer.saving import snapshot

    fresh = tmp_path / "fresh"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(fresh)))
    start = choose(cfg, "auto", distributed.env_info(), DriveFolder(SPEC, str(fresh)))
    assert start.where == f"{SPEC}/{name}" and start.path == str(fresh / name)
    assert file_md5(start.path) == _on_drive(drive)[name]
    assert ckpt.read_sidecar(start.path).md5 == _on_drive(drive)[name]
    return snapshot(run), ckpt.load_checkpoint(start.path)


def _same_state(held: dict, got: dict) -> None:
    """The checkpoint ``got`` holds the state ``held``: position, weights, optimizer (its
    momentum buffers), the run."""
    assert (got["epoch"], got["iteration"], got["epoch_iteration"], got["run"]) == \
        (held["epoch"], held["iteration"], held["epoch_iteration"], held["run"])
    for key in ("model", "ema"):
        assert held[key].keys() == got[key].keys()
    assert all(torch.equal(held["model"][k], got["model"][k]) for k in held["model"])
    mine, theirs = held["optimizer"], got["optimizer"]
    assert mine["param_groups"] == theirs["param_groups"]
    assert mine["state"].keys() == theirs["state"].keys() and mine["state"]
    for i, buffers in mine["state"].items():
        assert all(torch.equal(v, theirs["state"][i][k]) for k, v in buffers.items())


def _epoch_1_on_drive(tiny_config, logs, drive):
    run, writer, saver = _policy(tiny_config, logs, drive)
    epoch_1_on_drive(run, writer, saver)
    assert writer.verified("epoch_001.pt")
    return run, writer, saver


def _last_epoch(tiny_config, disk, then=lambda: None):
    """Epoch 1 saved and on Drive; the disk fills (and ``then()``); the last epoch (2) cannot
    be written. The run's end (SaveError), the run, the run folder, the DriveFolder."""
    from trainer.drive import DriveFolder

    logs = disk / "logs"
    drive = DriveFolder(SPEC, str(logs))
    run, writer, saver = _epoch_1_on_drive(tiny_config, logs, drive)
    try:
        _fill(str(disk))
        then()
        ended = last_epoch_ends(run, saver)
    finally:
        writer.close()
    assert ended.exit_code == 1
    return str(ended), run, logs, drive


def test_the_last_epoch_no_disk_takes_is_sent_from_memory_and_resumed_exactly(
        emulator, drive_env, one_disk, tiny_config, tmp_path):
    """The line ended ``, nor on this machine ([Errno 28] …); the newest checkpoint there is
    epoch_001.pt``: epoch 2 lost with the VM. Now Drive holds epoch_002.pt and its sidecar,
    verified, /tmp nothing, and a fresh machine's ``--resume auto`` gets that very state."""
    text, run, logs, drive = _last_epoch(tiny_config, one_disk)
    assert text == (
        f"could not write the checkpoint of epoch 2 (last.pt, epoch_002.pt) in {logs}: {FULL}; "
        f"its state is sent to {SPEC}/epoch_002.pt from memory instead (nor could this "
        f"machine take it: {FULL}) and verified there: free some space, then --resume auto "
        f"goes on from it"), text
    assert [n for n in os.listdir(one_disk / "tmp") if n.startswith("trainer-")] == []
    assert {"epoch_001.pt", "epoch_001.json", "epoch_002.pt", "epoch_002.json"} <= \
        set(_on_drive(drive))
    held, got = _saved(run, tmp_path, drive, "epoch_002.pt")
    assert (got["epoch"], got["iteration"]) == (2, 4)
    _same_state(held, got)


def test_the_last_epoch_drive_refuses_from_memory_too_is_said_lost(
        emulator, drive_env, one_disk, fast_retries, tiny_config):
    """Drive refusing it too (its quota): one line, the state lost and why; exit 1."""
    text, _, logs, drive = _last_epoch(tiny_config, one_disk, then=lambda: emulator.faults
                                       .inject("POST", r"/upload/",
                                               reason="storageQuotaExceeded", times=None))
    head = (f"could not write the checkpoint of epoch 2 (last.pt, epoch_002.pt) in {logs}: "
            f"{FULL}, nor on this machine ({FULL}), nor sent to {SPEC} from memory (Not "
            f"enough Drive storage")
    assert text.startswith(head), text
    assert text.endswith("): its state is lost; the newest checkpoint there is epoch_001.pt "
                         "(epoch 1, iteration 2): free some space and run the same command "
                         "again to train on from it"), text
    assert "epoch_002.pt" not in _on_drive(drive)


def _stop_on_a_full_disk(tiny_config, disk, then=lambda: None):
    """Epoch 1 saved and on Drive; the disk fills (and ``then()``); a SIGTERM at iteration 3:
    its TrainingInterrupted, the run, the DriveFolder."""
    from trainer.drive import DriveFolder

    drive = DriveFolder(SPEC, str(disk / "logs"))
    run, writer, saver = _epoch_1_on_drive(tiny_config, disk / "logs", drive)
    run.stop.grace_s = 20.0
    try:
        _fill(str(disk))
        then()
        stopped = sigterm_at_iteration_3(run, saver)
    finally:
        writer.close()
    assert stopped.exit_code == 143
    return str(stopped), run, drive


def test_a_stop_no_disk_takes_is_sent_from_memory_and_resumed_exactly(
        emulator, drive_env, one_disk, tiny_config, tmp_path):
    """A SIGTERM's autosave on the full disk: its copy "elsewhere" in /tmp failed too, and the
    line said ``nor sent to … from another folder ([Errno 28] …)``: the state lost. Now it
    is sent from memory under its own name and a fresh ``--resume auto`` gets it."""
    text, run, drive = _stop_on_a_full_disk(tiny_config, one_disk)
    head = (f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt could not be "
            f"written ({FULL}); it is sent to {SPEC}/autosave_00000003.pt from memory instead "
            f"(nor could this machine take it: {FULL}) and verified there (")
    assert text.startswith(head) and text.endswith(
        " s after the signal); resume with --resume auto"), text
    assert [n for n in os.listdir(one_disk / "tmp") if n.startswith("trainer-")] == []
    held, got = _saved(run, tmp_path, drive, "autosave_00000003.pt")
    assert (got["epoch"], got["iteration"], got["epoch_iteration"]) == (1, 3, 1)
    _same_state(held, got)


def test_a_stop_no_disk_takes_is_not_sent_beside_another_runs_file_and_said_lost(
        emulator, drive_env, one_disk, tiny_config, tmp_path):
    """Drive's folder holds another run's autosave_00000003.pt: ours is not added beside it,
    theirs stays, and the line says the state is lost and why."""
    from trainer.drive import DriveFolder
    from test_messages_attack18 import _tiny_state

    theirs = ckpt.save_checkpoint({**_tiny_state(1, "20261201-other"), "iteration": 3},
                                  str(tmp_path / "other" / "autosave_00000003.pt"))
    text, _, drive = _stop_on_a_full_disk(
        tiny_config, one_disk, then=lambda: DriveFolder(SPEC, str(tmp_path / "other"))
        .send_alone([theirs, ckpt.sidecar_path(theirs)]))
    assert text.startswith(
        f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt could not be "
        f"written ({FULL}), nor on this machine ({FULL}), nor sent to {SPEC} from memory (it "
        f"holds another run's autosave_00000003.pt, of run 20261201-other; sent, two files of "
        f"one name would be there): its state is lost; --resume auto continues from the "
        f"newest checkpoint there (Drive: "), text
    assert text.endswith(" ago, epoch 1 iteration 2 (epoch_001.pt))"), text
    there = _on_drive(drive)
    assert there["autosave_00000003.pt"] == file_md5(theirs)
    assert there["autosave_00000003.json"] == file_md5(ckpt.sidecar_path(theirs))


def test_a_stop_on_a_disk_gone_read_only_is_sent_from_memory(
        emulator, drive_env, one_disk, tiny_config, tmp_path):
    """The VM disk remounted read-only (as a failing disk is: EROFS), run folder and /tmp
    alike: the stop's save, then its copy in /tmp, failed, and the state was lost (a write
    that failed for another reason than a full disk is kept in /tmp: lastkeep32). Now it
    goes from memory."""
    from _tmpfs import _libc

    def read_only() -> None:
        ms_remount, ms_rdonly = 32, 1
        if _libc().mount(b"tmpfs", os.fsencode(one_disk), b"tmpfs", ms_remount | ms_rdonly,
                         None) != 0:
            pytest.skip("the tmpfs cannot be remounted read-only here")

    text, run, drive = _stop_on_a_full_disk(tiny_config, one_disk, then=read_only)
    ro = re.escape("[Errno 30] Read-only file system: ")
    assert re.fullmatch(
        rf"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003\.pt could not be "
        rf"written \({ro}'{re.escape(str(one_disk))}/logs/\S+'\); its state is sent to "
        rf"{SPEC}/autosave_00000003\.pt from memory instead \(nor could this machine take it: "
        rf"{ro}'{re.escape(str(one_disk))}/tmp/trainer-rescued-\w+'\) and verified there: "
        rf"--resume auto goes on from it", text), text
    assert [n for n in os.listdir(one_disk / "tmp") if n.startswith("trainer-")] == []
    held, got = _saved(run, tmp_path, drive, "autosave_00000003.pt")
    _same_state(held, got)


def test_a_stop_after_the_mount_stopped_with_tmp_full_is_sent_from_memory(
        emulator, drive_env, one_disk, tiny_config, tmp_path, working_drive_mount):
    """The run folder in a Drive mount that stopped, and this machine's disk full: the
    stop's state, rescued for the dead mount, ``could not be saved on this machine either
    ([Errno 28] …)``, though ``drive.logs`` was reachable. Now it is sent from memory."""
    from test_mount30_train import _gone, _policy as _mount_policy
    from trainer.drive import DriveFolder
    from trainer.errors import TrainingInterrupted

    mount = working_drive_mount
    logs = mount.point / "MyDrive" / "logs"
    os.makedirs(logs)
    drive = DriveFolder(SPEC, str(logs))
    run, writer, saver = _mount_policy(tiny_config, logs, lambda: 0.0, drive)
    saver.drive_spec = SPEC
    _fill(str(one_disk))
    mount.disconnect()
    saver.stop.request(signal.SIGTERM)
    run.state.pos = Position(1, 3, 1)
    try:
        with pytest.raises(TrainingInterrupted) as caught:
            saver.on_train_batch_end(run, Position(1, 3, 1), {})
    finally:
        writer.close()
    assert caught.value.exit_code == 143
    assert str(caught.value) == (
        f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt cannot be written "
        f"in {logs}: its state is sent to {SPEC}/autosave_00000003.pt from memory (nor could "
        f"this machine take it: {FULL}) and verified there. " + _gone(mount, "auto"))
    held, got = _saved(run, tmp_path, drive, "autosave_00000003.pt")
    _same_state(held, got)
