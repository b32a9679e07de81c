"""trainer.stopping with real signals raised in this process: which signals ask for a stop,
the exit code each one gives, and SIGHUP left alone where the user ignored it (nohup)."""
from __future__ import annotations

import re
import signal
import threading

import pytest

from trainer.stopping import StopFlag


@pytest.fixture
def hup_recorded():
    """SIGHUP caught by the test while it runs (its default would end the test process), and
    whatever was there before put back after."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: seen.append(signum))
    try:
        yield seen
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_sighup_from_a_closed_terminal_asks_for_a_stop_like_sigterm(hup_recorded):
    assert threading.current_thread() is threading.main_thread()
    stop = StopFlag(25.0)
    with stop.installed():
        signal.raise_signal(signal.SIGHUP)
    # The run saves and exits 129 (128 + 1), as a shell reports a hang-up; before, SIGHUP
    # ended the run at once with nothing saved.
    assert (stop.signum, stop.name, stop.exit_code) == (signal.SIGHUP, "SIGHUP", 129)
    assert hup_recorded == []  # the run's handler, not the one before it, saw it
    signal.raise_signal(signal.SIGHUP)
    assert hup_recorded == [signal.SIGHUP]  # put back when the run ended


def test_sighup_ignored_by_nohup_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        stop = StopFlag(25.0)
        with stop.installed():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            signal.raise_signal(signal.SIGHUP)
        assert not stop.is_set()  # the run goes on, as nohup asked
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_ask_for_a_stop_with_their_exit_codes(sig, code):
    stop = StopFlag(25.0)
    with stop.installed():
        signal.raise_signal(sig)
    assert (stop.signum, stop.exit_code) == (sig, code)


@pytest.mark.slow
def test_trainer_train_saves_and_exits_129_when_its_terminal_hangs_up(tiny_config, tmp_path):
    """A real ``trainer train`` whose terminal goes away mid-run: it saves a checkpoint at the
    next iteration and ends with 129 and its one line, as for SIGTERM; it died at once with
    nothing saved (-1)."""
    import os
    import time

    from _trainer_proc import start_trainer   # (forked with torch imported: 3 s of CPU less)

    config = tiny_config(**{"train.epochs": 50})
    log = tmp_path / "child.err"
    proc = start_trainer(["train", "--config", config], env={**os.environ, "OMP_NUM_THREADS": "1"},
                         stdout=str(tmp_path / "child.out"), stderr=str(log))
    try:
        deadline = time.monotonic() + 120
        # the handlers are in place once training has begun, and a step is done once the
        # epoch's bar moved (a hang-up before it saves nothing, rightly: "before the first
        # step", which a fast start reached when this waited for training to begin only)
        while not re.search(r"\| [12]/2 \[", log.read_text() if log.exists() else ""):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(log.read_text())
            time.sleep(0.01)
        proc.send_signal(signal.SIGHUP)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    err = log.read_text()
    assert proc.returncode == 129, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: stopped by SIGHUP at epoch ") and "autosave_" in last, err
    saved = [n for n in os.listdir(tmp_path / "logs") if n.startswith("autosave_")]
    assert len([n for n in saved if n.endswith(".pt")]) == 1, saved
