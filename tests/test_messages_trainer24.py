"""trainer24's messages (docs/troubleshooting.md), each made to happen by the real code."""
from __future__ import annotations

from _messages import renders, shown
from test_trainer22_hostile import _nan_model, _small_run
from test_trainer23_fallback import _save
from test_trainer24_status import SPEC, _status


@renders("is no state to train on (…): --resume auto passes over it",
         "--resume auto refuses: …; resume an earlier checkpoint with --resume PATH")
def test_status_lines_of_a_bad_checkpoint(emulator, drive_env, local_state, tiny_config,
                                          tmp_path):
    """trainer status, in-process, of a run whose only checkpoint on Drive holds NaN."""
    from trainer.drive import DriveFolder

    there = tmp_path / "elsewhere"
    run = _small_run(tiny_config, there)
    _save(run, there, "epoch_001.pt", 1, 1000.0, _nan_model)
    DriveFolder(SPEC, str(there)).push()
    lines = _status(tiny_config, there).stdout.splitlines()
    shown("is no state to train on (…): --resume auto passes over it", lines[1])
    # (the refusal the last line: what a user reads first, under the local files' line)
    shown("--resume auto refuses: …; resume an earlier checkpoint with --resume PATH", lines[-1])


@renders("its model weights do not fit the network of this config (")
def test_the_refusal_of_a_foreign_layout(tiny_config, tmp_path):
    """The run's only checkpoint has the run's signature and another layout: --resume auto
    refuses with why, as the CLI prints it."""
    import pytest

    from _messages import error_text
    from test_trainer24_resume import _another_layout, _choose
    from trainer.errors import CheckpointError

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0, _another_layout)
    with pytest.raises(CheckpointError) as refused:
        _choose(logs, run)
    shown("its model weights do not fit the network of this config (", error_text(refused.value))


@renders("passed over at the start as no state to train on, is moved aside to")
def test_the_warning_of_a_file_moved_aside(tiny_config, tmp_path, caplog):
    """As logged by the run's first save (an epoch's), after --resume auto passed it over."""
    import logging

    from test_trainer24_resume import _choose
    from trainer.saving import Checkpointer
    from trainer.state import Position
    from trainer.writer import BackgroundWriter

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    _save(run, logs, "epoch_002.pt", 2, 2000.0, _nan_model)
    start = _choose(logs, run)
    writer = BackgroundWriter(str(logs))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Checkpointer(run.cfg, run.info, writer, run.stop,
                     passed_over=start.passed_over).on_fit_epoch_end(run, Position(1, 2, 0), {})
    writer.close()
    shown("passed over at the start as no state to train on, is moved aside to",
          caplog.records[-1].getMessage())
