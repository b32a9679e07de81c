"""attackdel31: what the sweep of this machine's temporary folder (``stop_save.sweep``) may
remove when /tmp is shared. The trainer runs as root on Colab and in containers: a
``trainer-stop-…`` or ``trainer-rescued-…`` folder another user made (their stop's copy,
its bytes the same as this run folder's) was removed, though that user owns it. Now only
this user's own folders are looked at; a link planted under such a name is never followed.
Real checkpoint files (torch tensors); the sweep run in this thread."""
from __future__ import annotations

import os
import shutil
import tempfile

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)

from test_stopleft31_replace import NAME, _both, _pair


def _verified_in(out_dir: str, path: str) -> None:
    """The same bytes (checkpoint and sidecar) in the run folder: the copy is not the only one."""
    os.makedirs(out_dir, exist_ok=True)
    for p in _both(path):
        shutil.copy(p, out_dir)


def test_the_sweep_leaves_another_user_s_folders_and_follows_no_link(tmp_path):
    from drivestage.localfs import file_md5
    from trainer import stop_save

    tmp, out_dir = tempfile.gettempdir(), str(tmp_path / "run")
    mine = _pair(os.path.join(tmp, "trainer-stop-mine"))
    _verified_in(out_dir, mine)
    theirs = _pair(os.path.join(tmp, "trainer-stop-theirs"))
    for p in [os.path.dirname(theirs)] + _both(theirs):
        os.chown(p, 4242, 4242)   # (we run as root, as the trainer does on Colab)
    victim = _pair(str(tmp_path / "victim"))
    os.symlink(os.path.dirname(victim), os.path.join(tmp, "trainer-rescued-link"))
    md5 = file_md5(victim)
    stop_save._sweep(out_dir, None, None, None, False)
    assert sorted(os.listdir(tmp)) == ["trainer-rescued-link", "trainer-stop-theirs"]
    assert sorted(os.listdir(os.path.dirname(theirs))) == sorted(
        os.path.basename(p) for p in _both(theirs))
    assert file_md5(victim) == md5 and os.path.exists(_both(victim)[1])
    assert stop_save.leftovers() == [] and not stop_save.is_leftover(victim)


def test_the_start_keeps_the_copy_the_run_resumes_from(
        emulator, drive_env, local_state, tiny_config):
    """``--resume /tmp/trainer-stop-…/autosave_00000007.pt`` on purpose, Drive holding a
    checkpoint of the run further on, saved later (the run went past it once). The start's
    own sweep removed the copy the run had just resumed from: a loss that became NaN before
    the first save (its line says to resume from the last checkpoint with a lower
    train.lr), or a stop, found that state gone everywhere. It stays while the run depends
    on it, as a checkpoint resumed from on Drive is never pruned (the end of the run, once
    it went on past it, removes it)."""
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder
    from trainer.saving import snapshot
    from trainer.state import Position

    from test_stopleft31_sweep import _leftover, _left
    from test_train28_hung_disk import _policy

    spec = "drive:Models/ad31/sweep"
    logs = os.path.abspath(os.path.join(tempfile.gettempdir(), "..", "logs"))
    drive = DriveFolder(spec, logs)
    run, writer, saver = _policy(tiny_config, logs, drive)
    try:
        state = snapshot(run)
        ckpt.save_checkpoint({**state, "epoch": 4, "iteration": 12, "epoch_iteration": 0},
                             os.path.join(logs, "epoch_004.pt"), saved=2000.0)
        drive.push()
        back = _leftover(state, "trainer-stop-back", "autosave_00000007.pt", epoch=2,
                         iteration=7, epoch_iteration=1, saved=1000.0)
        run.resumed_from, run.state.pos = back, Position(2, 7, 1)   # (restored from it)
        saver.on_fit_start(run)
        assert saver.swept.join(30)
    finally:
        writer.close()
    assert _left() == ["trainer-stop-back"]
    assert ckpt.read_sidecar(back) is not None and os.path.exists(back)
