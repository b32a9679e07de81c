"""attackb51: a checkpoint saved in the middle of an epoch whose random states do not restore.

A resume in the middle of an epoch puts each process's random state back at the resumed
iteration (trainer.engine._train), after the lease, the data pull and the callbacks' start.
Nothing checked those states: a checkpoint whose sidecar vouches for its bytes but whose
``rng`` is torn (a Python state of another size, a torch generator state cut short, an
empty dict: a bug of another trainer, a hand-edited file) passed every check, and the run
stopped at its first iteration in a traceback (``RuntimeError: Expected a
CPUGeneratorImplState of size 5056 but found the input RNG state size to be 100``);
``--resume auto`` chose it again at every start. Now it is no state to train on, as NaN
weights are: ``--resume auto`` passes over it to the next older checkpoint (a warning
naming it and why; the file kept, moved aside at the first save), ``--resume PATH``
refuses it in one line, before anything is trained.
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
import signal

import pytest
import torch

from _messages import renders, shown
from _torn_checkpoint import one_step_into_epoch_2, torn as torn_copy
from _one_epoch import one_epoch  # noqa: F401  (the shared one-epoch run)
from trainer import checkpoint as ckpt
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import CheckpointError, TrainingInterrupted, UnusableCheckpointError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TORN = "autosave_00000003.pt"


def _torn_mid_epoch(one_epoch, logs) -> tuple[str, str]:  # noqa: F811
    """A checkpoint one step into epoch 2 whose torch random state is cut short."""
    def tear(state: dict) -> None:
        one_step_into_epoch_2(state)
        state["rng"][0]["torch"] = state["rng"][0]["torch"][:100]
    return torn_copy(one_epoch, logs, tear, TORN)


class _StopAtFirstStep(Callback):
    """A SIGTERM at the resumed run's first step: it saves there and stops (one step trained,
    not the epoch, its evaluation and plots: what the test asks is where it went on from)."""

    def on_train_batch_end(self, run, pos, logs):
        run.stop.request(signal.SIGTERM)


def test_resume_auto_passes_over_a_torn_random_state_to_the_checkpoint_before_it(
        one_epoch, tmp_path, caplog):  # noqa: F811
    logs = tmp_path / "logs"
    config, torn = _torn_mid_epoch(one_epoch, logs)
    torn_md5 = ckpt.read_sidecar(torn).md5
    with caplog.at_level(logging.INFO, logger="trainer"), \
            pytest.raises(TrainingInterrupted) as stopped:      # on main: RuntimeError
        fit(load_config(config), resume="auto", callbacks=[_StopAtFirstStep()])
    why = ("the random state of its process 0 does not restore (a damaged file, or another "
           "trainer's): RuntimeError: Expected a CPUGeneratorImplState of size ")
    assert f"{torn} is no state to train on ({why}" in caplog.text, caplog.text
    resumed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resumed from ")]
    assert len(resumed) == 1 and resumed[0].startswith(tuple(
        f"resumed from {logs / name} at epoch 1, " for name in ("epoch_001.pt", "last.pt",
                                                               "best.pt"))), resumed
    # Its first step saved under the torn file's own name: that one kept for a look (moved
    # aside at the run's first save, as any checkpoint passed over), not replaced.
    assert str(stopped.value).startswith(f"stopped by SIGTERM at epoch 2, iteration 3: {TORN} ")
    assert ckpt.read_sidecar(torn).epoch_iteration == 1
    assert ckpt.read_sidecar(torn).md5 != torn_md5
    aside = [n for n in os.listdir(logs) if n.startswith(f"{TORN}.bad-")]
    assert len(aside) == 1, os.listdir(logs)
    assert hashlib.md5((logs / aside[0]).read_bytes()).hexdigest() == torn_md5


@renders("does not restore (a damaged file, or another trainer's)")
def test_resume_path_of_a_torn_random_state_is_refused_in_one_line_before_a_step(
        one_epoch, tmp_path):  # noqa: F811
    logs = tmp_path / "logs"
    config, torn = _torn_mid_epoch(one_epoch, logs)
    before = sorted(os.listdir(logs))
    with pytest.raises(UnusableCheckpointError) as refused:
        fit(load_config(config), resume=torn)
    text = str(refused.value)
    assert text.startswith(
        f"cannot resume from {torn}: the random state of its process 0 does not restore (a "
        "damaged file, or another trainer's): RuntimeError: Expected a CPUGeneratorImplState "
        "of size "), text
    assert "\n" not in text and text.endswith("or start a new run in a new train.out_dir")
    assert sorted(os.listdir(logs)) == before   # nothing trained, saved or moved
    shown("does not restore (a damaged file, or another trainer's)", text)


@pytest.mark.parametrize("rng", [
    [{}], "torn", [{"python": (3, (1, 2, 3), None)}],
    [{"python": random.getstate(), "numpy": {}, "torch": torch.get_rng_state()}],
], ids=["empty", "not-a-list", "python-cut", "numpy-missing"])
def test_each_torn_random_state_is_refused_and_this_process_keeps_its_own(rng):
    from trainer.resume_states import check_rng

    state = {"epoch": 1, "epoch_iteration": 1, "rng": rng}
    random.seed(5)
    torch.manual_seed(5)
    with pytest.raises(UnusableCheckpointError):
        check_rng(state, "x.pt")
    assert (random.random(), float(torch.rand(1))) == _first_draws(5)
    # At an epoch's start the states are not used (the epoch is seeded afresh): let through.
    check_rng({**state, "epoch_iteration": 0}, "x.pt")


def _first_draws(seed: int) -> tuple[float, float]:
    random.seed(seed)
    torch.manual_seed(seed)
    return random.random(), float(torch.rand(1))


# --------------------------------------------------------------------------- the sampler's count

def _mid_epoch_counting(one_epoch, logs, samples: int) -> tuple[str, str]:  # noqa: F811
    """A checkpoint one step into epoch 2, its random states whole, its count of the
    epoch's samples trained ``samples`` (one step of 8 samples: 8)."""
    return torn_copy(one_epoch, logs, lambda state: one_step_into_epoch_2(state, samples), TORN)


@pytest.mark.parametrize("samples, why", [
    (10 ** 6, "epoch_meter.samples = 1000000, more than its training list's 18 samples"),
    (0, "epoch_meter.samples = 0, fewer than its 1 steps of the epoch"),
])
def test_a_count_of_samples_the_epoch_cannot_have_is_refused_not_trained_on(
        one_epoch, tmp_path, samples, why):  # noqa: F811
    """The resume skips that many samples of the epoch's order: beyond the list the sampler
    clamped it and the rest of the epoch went untrained, without a word; 0 after a step
    trained that step's samples twice."""
    logs = tmp_path / "logs"
    config, path = _mid_epoch_counting(one_epoch, logs, samples)
    before = sorted(os.listdir(logs))
    with pytest.raises(CheckpointError) as refused:
        fit(load_config(config), resume=path)    # on main: trained on, exit 0
    assert str(refused.value) == (
        f"{path} holds {why}, which no checkpoint of this trainer holds (a damaged file, or "
        "another program's): resume from another")
    assert sorted(os.listdir(logs)) == before


def test_the_count_rule_lets_through_what_a_resume_can_write():
    """What the trainer writes passes: a count padded to the processes' shares (18 samples
    on 2 processes: 19 may be counted), and fewer samples than steps where a resume with
    ``data.allow_change`` went on over a list shorter than the steps done (the skip is
    clamped to the list)."""
    from trainer.state import _samples_problem

    def state(steps, seen, count, processes):
        return {"epoch_iteration": steps, "epoch_meter": {"samples": seen},
                "train_samples": {"count": count}, "rng": [{}] * processes}

    assert _samples_problem(state(2, 19, 18, 2)) is None
    assert _samples_problem(state(5, 4, 4, 1)) is None
    assert _samples_problem(state(2, 19, 18, 1)) == (
        "epoch_meter.samples = 19, more than its training list's 18 samples")
    assert _samples_problem(state(5, 0, 18, 1)) == (
        "epoch_meter.samples = 0, fewer than its 5 steps of the epoch")
