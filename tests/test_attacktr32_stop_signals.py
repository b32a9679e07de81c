"""attacktr32: a stop no signal asked for (a DataLoader worker's death, a lost rank) waits for
Drive past the grace (grace32): a signal during that wait cuts it to the grace at once, since
a SIGKILL may follow. A SIGHUP did not (attackstop32: a hang-up is never the second signal,
and no SIGKILL follows a terminal's hang-up). Under torchrun one does: its agent, hung up
itself (the SSH session it was started in dropped), forwards the SIGHUP to every rank and
SIGKILLs them 30 s later (torch.distributed.elastic's ``PContext.close(death_sig,
timeout=30)``). The wait went on, up to 15 minutes, and the launcher's SIGKILL cut off the
stop's line and its advice. Now, under torchrun, a SIGHUP bounds the waits as a SIGTERM does
(it still never counts as the second signal).

The real save policy, background writer and Drive (the emulator) around a one-layer network
(tests/test_messages_train.py's ``_run``), the stop's upload held far longer than the grace.
"""
from __future__ import annotations

import os
import re
import signal

import pytest

from _messages import error_text
from _worker_death import (ADVICE, not_reached_within_the_grace, signal_as_the_stops_push_begins,
                           stopped_with_its_upload_held, worker_death_at_iteration_3)
from test_messages_train import FOLDER, _drive_config, _remote, _run, drive  # noqa: F401
from trainer import stopping


def test_under_torchrun_a_sighup_during_a_worker_deaths_wait_cuts_it_to_the_grace(
        drive, tiny_config, monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    # (Before: the line came at this bound, the launcher's SIGKILL long past.)
    monkeypatch.setattr(stopping, "UNSIGNALLED_WAIT_S", 4.0)
    run = _run(_drive_config(tiny_config), drive=True, grace_s=0.8)
    # (the stop's push begins: torchrun's SIGHUP now)
    sent = signal_as_the_stops_push_begins(run, monkeypatch, signal.SIGHUP)
    stopped, on_drive = stopped_with_its_upload_held(run, drive)
    assert sent and not run.stop.signalled   # (still never the second signal)
    assert "autosave_00000003.pt" not in on_drive
    text = error_text(stopped).removeprefix("Error: ")
    assert text == not_reached_within_the_grace(run), text
    assert stopped.exit_code == 1
    assert sorted(os.listdir(run.out_dir)) == ["autosave_00000003.json", "autosave_00000003.pt"]


def test_without_torchrun_a_sighup_leaves_that_wait_as_it_was():
    """No launcher's SIGKILL follows a terminal's hang-up: the push goes on."""
    stop = stopping.StopFlag(10)
    stop.request(stopping.WORKER_DEATH)
    with stop.installed():
        os.kill(os.getpid(), signal.SIGHUP)
    assert stop.unsignalled and stop.until() == stop.at + stopping.UNSIGNALLED_WAIT_S


def test_a_ctrl_c_while_a_worker_deaths_stop_closes_its_writer_keeps_the_line(
        drive, tiny_config, monkeypatch, tmp_path):
    """A stop without a signal on a slow disk: its copy sent from a temporary folder is
    verified, the line is ready, and the close (``on_interrupt``, after the training's
    handlers are gone) waits for the slow local write as long as the stop may (15 min). A
    Ctrl-C there was Python's own KeyboardInterrupt (a SIGTERM: the process killed): the line
    was never printed. Now it cuts that wait to the grace, and the stop's line stands."""
    import tempfile

    from test_stop30_slow_disk import SlowDisk

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # (the copy elsewhere: here)
    run = _run(_drive_config(tiny_config), drive=True, grace_s=0.8)
    disk = SlowDisk(monkeypatch, run.out_dir)   # (the run folder's write ends when let)
    close, sent = run.writer.close, []

    def close_then_ctrl_c(*args, **kwargs):
        if not sent:   # (the close after the stop begins: the user's Ctrl-C now)
            sent.append(os.getpid())
            os.kill(os.getpid(), signal.SIGINT)
        return close(*args, **kwargs)

    monkeypatch.setattr(run.writer, "close", close_then_ctrl_c)
    try:
        stopped = worker_death_at_iteration_3(run)
        try:
            run.checkpointer.on_interrupt(run, stopped)   # (as trainer.engine fires it)
        except KeyboardInterrupt:
            pytest.fail("the Ctrl-C was Python's KeyboardInterrupt: the stop's line was lost")
    finally:
        disk.ends()
        close()
    assert sent and run.stop.signalled
    text = error_text(stopped).removeprefix("Error: ")
    assert re.fullmatch(re.escape(
        f"stopped by a DataLoader worker's death at epoch 1, iteration 3: autosave_00000003.pt "
        f"could not be written (its write in {run.out_dir} has not ended after S s: the disk "
        f"answers, but too slowly for train.grace_seconds (0.8 s)); it is sent to "
        f"drive:{FOLDER} from a temporary folder instead and verified there (S s after the "
        f"worker's death; the temporary copy is removed); resume with --resume auto{ADVICE}"
    ).replace("S\\ s", r"\d+\.\d s"), text), text
    assert stopped.exit_code == 1
    assert [n for n in os.listdir(tmp_path) if n.startswith("trainer-")] == []
    assert sorted(_remote(drive)) == ["autosave_00000003.json", "autosave_00000003.pt"]


SCRIPT = r"""
import os, signal
from trainer.stopping import StopFlag

stop = StopFlag(20)
with stop.installed():
    os.kill(os.getpid(), signal.SIGTERM)   # (systemd's, to every process of the service)
    os.kill(os.getpid(), signal.SIGTERM)   # (torchrun's agent passing its own on)
    print(stop.name, stop.exit_code, flush=True)   # (the stop's save goes on)
    os.kill(os.getpid(), signal.SIGINT)   # (another signal: the second, at once)
    print("after", flush=True)
"""


def _sigterms(torchrun: bool):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TORCHELASTIC_RUN_ID"}
    env.update(PYTHONPATH=os.pathsep.join(sys.path), **({"TORCHELASTIC_RUN_ID": "none"}
                                                        if torchrun else {}))
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=60)


def test_under_torchrun_a_stop_of_every_process_at_once_is_no_second_signal():
    """systemd stopping the service (or the VM) that runs torchrun, SLURM's scancel: SIGTERM to
    every process of the control group, the agent's forward of its own milliseconds later.
    A real torchrun run so stopped lost its stop save on 2 tries of 4 (no line, no autosave).
    A process of its own: before the fix the handler kills the process it runs in."""
    done = _sigterms(torchrun=True)
    assert (done.returncode, done.stdout) == (-signal.SIGINT, "SIGTERM 143\n"), done
    assert done.stderr.rstrip().endswith("KeyboardInterrupt"), done.stderr
    alone = _sigterms(torchrun=False)   # (no launcher: a second SIGTERM is the user's)
    assert (alone.returncode, alone.stdout) == (-signal.SIGTERM, ""), alone
