"""attackb51: a checkpoint whose bytes are whole (its sidecar vouches for them) but whose
state is torn where no check looked: its optimizer's momentum not a tensor (a number, a
string, a 0-dim tensor), its ``config`` no dict of sections, its ``signature`` no dict.

Each stopped ``--resume PATH`` in a traceback: the config and signature before a step
(``AttributeError: 'list' object has no attribute 'get'``, ``TypeError: 'NoneType' object is
not a mapping``), the momentum at the first step, after the data pull and the lease
(``AttributeError: 'str' object has no attribute 'mul_'``). Now each is one line naming the
file and what it holds (exit 1, nothing trained or written), and ``--resume auto`` passes
over it as a damaged file (those checks are the ones it vets with).
"""
from __future__ import annotations

import os

import pytest
import torch

from _torn_checkpoint import torn
from _one_epoch import one_epoch  # noqa: F401  (the shared one-epoch run)
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import CheckpointError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _momenta(value):
    def tear(state: dict) -> None:
        for slot in state["optimizer"]["state"].values():
            slot["momentum_buffer"] = value
    return tear


BOOKKEEPING = ("which no checkpoint of this trainer holds (a damaged file, or another "
               "program's): resume from another")
REMEDY = "; resume an earlier checkpoint of the run with --resume PATH"


@pytest.mark.parametrize("tear, said", [
    (lambda s: s["config"].__setitem__("train", [1, 2]),
     "holds config.train = [1, 2], " + BOOKKEEPING),
    (lambda s: s.__setitem__("config", "x"), "holds config = 'x', " + BOOKKEEPING),
    (lambda s: s.__setitem__("signature", None), "holds signature = None, " + BOOKKEEPING),
    (_momenta("x"), "the optimizer state does not match the model (61 entries of its state "
                    "that should be tensors, e.g. group 0 parameter 0: momentum_buffer is a "
                    "str)" + REMEDY),
    (_momenta(torch.tensor(1.0)), "the optimizer state does not match the model (61 tensors of "
                                  "another shape, e.g. group 0 parameter 0: momentum_buffer () "
                                  "for (8,))" + REMEDY),
], ids=["config-section", "config", "signature", "momentum-str", "momentum-0dim"])
def test_a_torn_state_is_refused_in_one_line_before_a_step(one_epoch, tmp_path, tear,
                                                           said):  # noqa: F811
    logs = tmp_path / "logs"
    config, path = torn(one_epoch, logs, tear)   # (its sidecar vouches for the torn bytes)
    before = {n: (logs / n).read_bytes() for n in os.listdir(logs) if (logs / n).is_file()}
    with pytest.raises(CheckpointError) as refused:      # on main: a traceback
        fit(load_config(config), resume=path)
    text = str(refused.value)
    assert text.startswith((f"{path} {said}", f"cannot resume from {path}: {said}")), text
    assert "\n" not in text
    assert {n: (logs / n).read_bytes() for n in os.listdir(logs) if (logs / n).is_file()} \
        == before


@pytest.mark.parametrize("updates", [-(10 ** 7), float("inf")], ids=["negative", "infinite"])
def test_an_ema_update_count_that_is_no_count_is_refused_in_one_line(updates):
    """Negative, the first step's decay ``exp(-updates / tau)`` overflowed (OverflowError,
    after the data pull); infinite, ``int()`` raised OverflowError, not refused either."""
    from trainer.optim import ModelEMA
    from trainer.resume_checks import load_ema
    from trainer.errors import UnusableCheckpointError

    ema = ModelEMA(torch.nn.Linear(2, 1))
    state = {"model": ema.ema.state_dict(), "updates": updates}
    with pytest.raises(UnusableCheckpointError) as refused:
        load_ema(ema, state, "x.pt")
    assert str(refused.value).startswith(
        f"cannot resume from x.pt: the EMA's update count is {ascii(updates)}, not a count of "
        "steps; resume an earlier checkpoint"), refused.value
    assert ema.updates == 0


@pytest.mark.parametrize("key, value", [("scale", float("nan")), ("scale", 0.0),
                                        ("scale", -1.0), ("growth_factor", 0.5),
                                        ("growth_interval", 0)])
def test_a_gradient_scaler_that_would_skip_every_step_is_refused(key, value):
    """``train.amp`` runs on CUDA only; the check needs no GPU. With a scale of NaN or 0
    every step's gradients read as overflowed: torch's GradScaler skips the step and backs
    the scale off (NaN or 0 again), so the resumed run never trained another step, without a
    word (checked with ``torch.amp.GradScaler("cpu")``: the weights never change)."""
    from trainer.errors import UnusableCheckpointError
    from trainer.resume_states import check_scaler

    saved = torch.amp.GradScaler("cpu", enabled=True).state_dict()
    check_scaler({"scaler": saved}, "x.pt")            # a scaler's own state: let through
    check_scaler({"scaler": {}}, "x.pt")               # (a disabled scaler's)
    with pytest.raises(UnusableCheckpointError) as refused:
        check_scaler({"scaler": {**saved, key: value}}, "x.pt")
    assert str(refused.value).startswith(
        f"cannot resume from x.pt: its gradient scaler's {key} is {ascii(value)}, not "), \
        refused.value


def _adam_state() -> tuple[torch.optim.Optimizer, dict]:
    """A fresh Adam over a small model, and the state of one that took a step."""
    model = torch.nn.Linear(3, 2)
    stepped = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.ones(1, 3)).sum().backward()
    stepped.step()
    return torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.01), stepped.state_dict()


@pytest.mark.parametrize("name, value, said", [
    ("step", torch.tensor(-5.0), "step -5.0, not a count of steps"),
    ("step", torch.tensor([1.0, 2.0, 3.0]), "step a tensor of shape (3,), not a count of steps"),
    ("exp_avg_sq", -1.0, "exp_avg_sq below 0, a mean of squares"),
], ids=["step-negative", "step-vector", "squares-negative"])
def test_an_adam_state_no_optimizer_writes_is_refused_before_it_is_loaded(name, value, said):
    """On main each loaded, and the first step stopped in a traceback (``result type
    ComplexFloat can't be cast to the desired output type Float``, ``a Tensor with 3 elements
    cannot be converted to Scalar``) or its loss was NaN ("resume from the last checkpoint
    with a lower train.lr": the same one, again)."""
    from trainer.errors import UnusableCheckpointError
    from trainer.resume_checks import load_optimizer

    optimizer, state = _adam_state()
    slot = state["state"][0]
    slot[name] = value if isinstance(value, torch.Tensor) else slot[name] * 0 + value
    with pytest.raises(UnusableCheckpointError) as refused:
        load_optimizer(optimizer, state, "x.pt")
    assert str(refused.value).startswith(
        f"cannot resume from x.pt: its optimizer state holds values no optimizer writes "
        f"(parameter 0: {said}): a damaged file, or another program's; resume an earlier "), \
        refused.value
    assert optimizer.state_dict()["state"] == {}     # nothing loaded


@pytest.mark.parametrize("best", [float("nan"), float("inf"), 5.0], ids=["nan", "inf", "5"])
def test_a_best_map_no_evaluation_gives_is_refused_as_it_is_loaded(tmp_path, best):
    """The run's best mAP@0.5 read back as NaN, an infinity or above 1: no later epoch's mAP
    was above it (``map50 > best`` never true), so ``best.pt`` was never written again for
    the rest of the run, without a word."""
    from trainer import checkpoint as ckpt

    state = {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {}, "epoch": 3,
             "iteration": 30, "epoch_iteration": 0, "config": {}, "run": "r1",
             "best_map50": best, "best_epoch": 2}
    path = ckpt.save_checkpoint(state, str(tmp_path / "epoch_003.pt"))
    with pytest.raises(CheckpointError) as refused:            # on main: loaded
        ckpt.load_checkpoint(path)
    assert str(refused.value) == (
        f"{path} holds best_map50 = {ascii(best)}, which no checkpoint of this trainer holds (a "
        "damaged file, or another program's): resume from another")
