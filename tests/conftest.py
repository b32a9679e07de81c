"""Shared fixtures: a real emulator over HTTP on 127.0.0.1 and environments pointing at it."""
from __future__ import annotations

import os
import signal

import pytest

# A suite started in the background by a shell without job control (`(make test &)`, some CI
# runners) inherits SIGINT ignored, which Python then leaves ignored, and so would every
# process a test starts: each test that presses Ctrl-C for real (a SIGINT) failed. The
# tests' own processes get Python's usual handler back (a handler, unlike SIG_IGN, is not
# inherited across exec: children start with the default again).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# `make test` runs the suite in one worker process per core, and one more (pytest-xdist,
# `-n auto`): a fifth of a worker's time is spent waiting (on the processes a test starts, on
# the emulator, on a download's pace), and the extra worker fills it (2 cores: 6:22 ->
# 5:32-6:06 here).
# Each worker, and every process a test starts, then gets one compute thread: two workers
# with two OpenMP threads each on two cores made torch's threads wait on each other (a 12 s
# test took 290 s).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = "1"


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: the cores this process may run on, plus one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores + 1


@pytest.fixture
def emulator_factory(tmp_path):
    """``emulator_factory(**options)`` -> a started Drive API emulator on a random loopback
    port (its own data folder unless ``data_dir`` is given; ``quota_bytes``, ``token``...),
    stopped after the test."""
    from drivestage.emulator import Emulator

    started = []

    def make(**options):
        options.setdefault("data_dir", str(tmp_path / f"drive-data-{len(started)}"))
        emu = Emulator(**options).start()
        started.append(emu)
        return emu

    yield make
    for emu in reversed(started):
        emu.stop()


@pytest.fixture
def emulator(emulator_factory):
    """A fresh Drive API emulator on a random loopback port, stopped after the test."""
    return emulator_factory()


@pytest.fixture
def drive_env(emulator, monkeypatch):
    """Point drivestage (library and CLI in this process) at the emulator."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    return {"DRIVESTAGE_API_ROOT": emulator.url, "DRIVESTAGE_TOKEN": "test-token"}


# --- trainer: a tiny synthetic VOC dataset and a config that trains on it in seconds ---------

@pytest.fixture(scope="session")
def synth_voc(tmp_path_factory):
    """A 24-image, 3-class synthetic VOCdevkit (+ annotation lines and the recipe's zip), made once."""
    from trainer.data.synth import make_synthetic_voc

    out = tmp_path_factory.mktemp("synth")
    return make_synthetic_voc(out / "data", images=24, classes=3, seed=0, image_size=(64, 120),
                              zip_path=out / "synth.zip")


@pytest.fixture
def tiny_config(synth_voc, tmp_path):
    """``tiny_config(**{"train.epochs": 3, ...})`` -> path of a YAML config for a seconds-long run."""
    import yaml

    def make(**overrides):
        cfg = {
            "data": {"classes": str(synth_voc.classes_file), "train": str(synth_voc.train_lines_file),
                     "val": str(synth_voc.val_lines_file), "workers": 0, "root": str(tmp_path / "data")},
            "model": {"input_size": 64},
            "train": {"epochs": 2, "freeze_epochs": 1, "batch_size": 8, "freeze_batch_size": 8,
                      "save_period": 1, "eval_period": 1, "out_dir": str(tmp_path / "logs"),
                      "deterministic": True, "device": "cpu", "mosaic": True, "mixup": True},
        }
        for key, value in overrides.items():
            section, name = key.split(".")
            cfg.setdefault(section, {})[name] = value
        path = tmp_path / f"tiny{len(list(tmp_path.glob('tiny*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return str(path)

    return make


@pytest.fixture
def one_torch_thread():
    """Train on one intra-op thread: on a shared 2-core machine this is 5-10x faster (no OpenMP
    spin-waiting against other processes) and the arithmetic is the same in every process."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def local_state(tmp_path, monkeypatch):
    """drivestage's local state (md5 cache, upload sessions) in tmp_path; retries that
    back off in milliseconds instead of seconds."""
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.05")
    return tmp_path


@pytest.fixture
def env(local_state):
    """The environment drivestage runs in; test modules override it to add settings."""
    return local_state


@pytest.fixture
def store(emulator, env):
    """A DriveStore on the emulator, in ``env`` (a module may override either fixture)."""
    from drivestage.drive import connect

    return connect(api_root=emulator.url, token="test-token")


@pytest.fixture
def fast_retries(monkeypatch):
    """Retry backoffs of a millisecond and no jitter (the schedule itself is unit-tested)."""
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.001")
    monkeypatch.setenv("DRIVESTAGE_RETRY_JITTER", "0")


@pytest.fixture(autouse=True)
def _loggers_as_they_were():
    """A command run in this process points drivestage's and trainer's loggers at its own
    stream and stops them propagating: put them back after each test, so that a later test's
    ``caplog`` sees their records."""
    import logging

    saved = [(log, log.handlers[:], log.propagate, log.level)
             for log in (logging.getLogger("drivestage"), logging.getLogger("trainer"))]
    yield
    for log, handlers, propagate, level in saved:
        log.handlers[:] = handlers
        log.propagate = propagate
        log.setLevel(level)
