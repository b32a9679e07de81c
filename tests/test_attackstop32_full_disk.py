"""attackstop32: a stop whose run folder's disk is full, on a run without ``drive.logs``.

``train.out_dir`` on a disk of its own (a mounted volume, a quota'd working folder) that
fills up as the stop's autosave is written: the write fails (ENOSPC) and, with no Drive to
send the state from elsewhere (:mod:`trainer.stop_save` needs ``drive.logs``), the state in
memory was dropped: ``autosave_… could not be written ([Errno 28] No space left on device …);
the newest earlier checkpoint is where --resume auto continues``, though this machine's own
temporary folder, on another disk, had room. Now it is kept there and named, as a stop on a
hung run folder keeps it (attackt31).

A real tmpfs that fills (tests/_tmpfs.py), the real save policy; tiny_config."""
from __future__ import annotations

import os
import tempfile


from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from _save_policy import last_epoch_ends, sigterm_at_iteration_3
from _tmpfs import small_disk  # noqa: F401  (fixture)
from drivestage.localfs import file_md5
from test_attack18_train import _fill
from test_train28_hung_disk import _policy
from trainer import checkpoint as ckpt
from trainer.state import Position


def test_a_stop_whose_run_folder_disk_is_full_keeps_its_state_on_this_machine(
        tiny_config, small_disk):
    logs = small_disk(64 << 20) / "logs"
    run, writer, saver = _policy(tiny_config, logs)
    run.stop.grace_s = 5.0
    try:
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        before = sorted((n, file_md5(logs / n)) for n in os.listdir(logs) if n != "tensorboard")
        _fill(str(logs))   # (another program fills the disk; the stop comes)
        stopped = sigterm_at_iteration_3(run, saver)
    finally:
        writer.close()
    text = str(stopped)
    head = ("stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt could not be "
            "written ([Errno 28] No space left on device")
    assert text.startswith(head) and stopped.exit_code == 143, text
    kept = "; its state is saved in "
    assert kept in text, text
    path = text.split(kept, 1)[1].split(" ", 1)[0]
    assert text.endswith(f"{kept}{path} on this machine: --resume {path} goes on from it (copy "
                         "it off this machine while it lasts)"), text
    assert os.path.dirname(os.path.dirname(path)) == tempfile.gettempdir()
    assert os.path.basename(os.path.dirname(path)).startswith("trainer-rescued-")
    assert sorted(os.listdir(os.path.dirname(path))) == ["autosave_00000003.json",
                                                         "autosave_00000003.pt"]
    side = ckpt.read_sidecar(path)
    assert side.md5 == file_md5(path) and (side.epoch, side.iteration) == (1, 3)
    assert ckpt.load_checkpoint(path)["iteration"] == 3
    # The run folder: what it held, nothing half-written under a checkpoint's name.
    assert sorted((n, file_md5(logs / n)) for n in os.listdir(logs)
                  if n not in ("tensorboard", "filler.bin")) == before


def test_a_stop_whose_temporary_folder_is_on_the_same_full_disk_says_so_and_leaves_nothing(
        tiny_config, small_disk, monkeypatch):
    """The temporary folder on the same full disk (Colab: /tmp and /content are one disk):
    the line says so, and no empty ``trainer-rescued-…`` folder is left there."""
    disk = small_disk(64 << 20)
    logs, tmp = disk / "logs", disk / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    run, writer, saver = _policy(tiny_config, logs)
    run.stop.grace_s = 5.0
    try:
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        _fill(str(logs))
        stopped = sigterm_at_iteration_3(run, saver)
    finally:
        writer.close()
    full = "[Errno 28] No space left on device"
    assert str(stopped) == (
        f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt could not be "
        f"written ({full}), nor on this machine ({full}); the newest earlier checkpoint is "
        "where --resume auto continues"), str(stopped)
    assert stopped.exit_code == 143
    # (torch's first use in a process may make its own torchinductor_root there: not ours.)
    assert [n for n in os.listdir(tmp) if n.startswith("trainer-")] == []


def test_the_last_epoch_on_a_full_disk_keeps_its_state_on_this_machine(tiny_config, small_disk):
    """The run folder's disk full as the LAST epoch's checkpoint is written: the run ended
    `could not write the checkpoint of epoch 2 (last.pt, epoch_002.pt) in …: [Errno 28] …;
    the newest checkpoint there is epoch_001.pt …`, and the trained epoch, still in memory,
    was dropped (a full epoch to train again). Now it is kept on this machine and named."""

    logs = small_disk(64 << 20) / "logs"
    run, writer, saver = _policy(tiny_config, logs)
    try:
        run.state.pos = Position(1, 2, 0)
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        before = sorted((n, file_md5(logs / n)) for n in os.listdir(logs) if n != "tensorboard")
        _fill(str(logs))
        ended = last_epoch_ends(run, saver)
    finally:
        writer.close()
    text = str(ended)
    head = (f"could not write the checkpoint of epoch 2 (last.pt, epoch_002.pt) in {logs}: "
            "[Errno 28] No space left on device; its state is saved in ")
    assert text.startswith(head), text
    path = text[len(head):].split(" ", 1)[0]
    assert text == (head + f"{path} on this machine: free some space, then --resume {path} goes "
                    "on from it (copy it off this machine while it lasts)")
    assert os.path.basename(path) == "epoch_002.pt"
    assert os.path.basename(os.path.dirname(path)).startswith("trainer-rescued-")
    side = ckpt.read_sidecar(path)
    assert side.md5 == file_md5(path) and (side.epoch, side.iteration) == (2, 4)
    assert sorted((n, file_md5(logs / n)) for n in os.listdir(logs)
                  if n not in ("tensorboard", "filler.bin")) == before
