"""lefts52: ``trainer status`` on the training machine, where every checkpoint on Drive is
passed over (NaN weights): exit 0 (status answered; ``--json``'s ``resume_refused`` says the
refusal), and the text's last line is ``--resume auto refuses: …`` with what to do. The run
folder's line (its epoch files here) came after it, so a reader of the last line (``trainer
status | tail -1``, a notebook's end) read of local files, not of the refusal."""
from __future__ import annotations

from test_trainer22_hostile import _nan_model, _small_run
from test_trainer23_fallback import RUN, _save
from test_keeplocal25 import fitted
from test_trainer24_status import SPEC, _status


def test_the_refusal_is_status_s_last_line_on_the_training_machine(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """On main a02cab15 the last line was ``…/logs: 1 epoch file on this machine
    (epoch_001.pt); train.keep_local …``, the refusal before it."""
    from trainer.drive import DriveFolder

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0, fitted(_nan_model))
    DriveFolder(SPEC, str(logs)).push()
    res = _status(tiny_config, logs)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[-1] == (f"--resume auto refuses: no checkpoint of run {RUN} on {SPEC} is a "
                         f"state to train on; resume an earlier checkpoint with --resume PATH "
                         f"(drivestage ls {SPEC} lists them, drivestage pull <one> ./weights "
                         f"fetches it), or start a new run in a new train.out_dir"), lines
    assert any(line.startswith(f"{logs}: 1 epoch file on this machine (epoch_001.pt)")
               for line in lines[:-1]), lines
