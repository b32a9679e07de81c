"""The training loop: LR scaling and schedule, parameter groups, EMA, a full tiny fit, NaN stop."""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re

import pytest
import torch

from trainer import checkpoint as ckpt
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.engine import fit
from trainer.one_epoch import train_one_epoch
from trainer.optim import LRSchedule, ModelEMA, build_optimizer, param_groups, scaled_lr
from trainer.errors import NonFiniteLossError
from trainer.loss import YoloLoss
from trainer.model import YoloV4Tiny
from trainer.state import EpochMeter, Position

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(*overrides):
    return load_config(None, ["train.epochs=20", "train.freeze_epochs=0", *overrides])


def test_lr_is_scaled_by_batch_size_and_clamped_as_the_port_does():
    assert scaled_lr(_cfg("train.lr=1e-2"), 16) == pytest.approx((2.5e-3, 2.5e-5))
    assert scaled_lr(_cfg("train.lr=1e-2"), 64) == pytest.approx((1e-2, 1e-4))
    assert scaled_lr(_cfg("train.lr=1e-2"), 1) == pytest.approx((5e-4, 5e-6))        # SGD floor
    assert scaled_lr(_cfg("train.lr=1"), 64) == pytest.approx((5e-2, 5e-4))          # SGD ceiling
    adam = _cfg("train.optimizer=adam", "train.lr=1e-3")
    assert scaled_lr(adam, 16) == pytest.approx((3e-4, 3e-6))                        # Adam floor


def test_cosine_schedule_warms_up_decays_and_ends_flat_per_iteration():
    cfg = _cfg("train.lr=1e-2")
    sched = LRSchedule(cfg)
    lr, min_lr = scaled_lr(cfg, 64)
    assert sched(0.0, 64) == pytest.approx(0.1 * lr)          # warm-up starts at 10 %
    assert sched(1.0, 64) == pytest.approx(lr)                # warm-up: 1 epoch of 20
    assert sched(0.5, 64) == pytest.approx(0.1 * lr + 0.9 * lr * 0.25)
    assert sched(19.0, 64) == pytest.approx(min_lr)           # last epoch flat at the minimum
    values = [sched(1 + i / 10, 64) for i in range(180)]
    assert all(a > b for a, b in zip(values, values[1:]))     # strictly decreasing: per iteration
    assert sched(5.0, 64) != sched(5.5, 64)
    assert sched(5.0, 16) == pytest.approx(sched(5.0, 64) * 16 / 64)  # the phase's batch size


def test_step_schedule_has_ten_steps_from_lr_to_min():
    cfg = _cfg("train.lr=1e-2", "train.lr_schedule=step")
    sched = LRSchedule(cfg)
    lr, min_lr = scaled_lr(cfg, 64)
    assert sched(0, 64) == pytest.approx(lr)
    assert sched(1.9, 64) == pytest.approx(lr)
    assert sched(19.9, 64) == pytest.approx(min_lr)
    assert len({round(sched(e / 2, 64), 12) for e in range(40)}) == 10


def test_parameter_groups_put_decay_only_on_conv_weights():
    model = YoloV4Tiny(3, input_size=64)
    norm, decay, bias = param_groups(model)
    assert len(norm) + len(decay) + len(bias) == len(list(model.parameters()))
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norm) == len(bn) and all(p.ndim == 1 for p in norm)
    assert all(p.ndim == 4 for p in decay)
    assert len(bias) == len(bn) + 2  # BN biases and the two head convs' biases
    opt = build_optimizer(model, _cfg(), 0.01)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 5e-4, 0.0]
    assert isinstance(build_optimizer(model, _cfg("train.optimizer=adamw"), 1e-3), torch.optim.AdamW)


def test_ema_ramps_up_and_round_trips():
    model = torch.nn.Linear(2, 2)
    ema = ModelEMA(model, decay=0.9, tau=1.0)
    before = ema.ema.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    d = 0.9 * (1 - math.exp(-1))
    assert torch.allclose(ema.ema.weight, before * d + model.weight * (1 - d))
    other = ModelEMA(torch.nn.Linear(2, 2))
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and torch.equal(other.ema.weight, ema.ema.weight)


def test_before_step_runs_when_a_batch_has_arrived_and_before_its_forward():
    """The seam a profiler splits the wait for data from the step at: the loader's batch is
    in hand, the model has not run yet; ``pos`` is the last completed step."""
    torch.manual_seed(0)
    model, criterion = YoloV4Tiny(3, input_size=64), YoloLoss(3, input_size=64)
    order: list = []
    model.register_forward_pre_hook(lambda *_: order.append("forward"))

    def loader():
        for k in range(3):
            order.append(f"batch {k}")
            yield torch.rand(2, 3, 64, 64), torch.tensor([[0, 1, 0.5, 0.5, 0.3, 0.3], [1, 2, 0.4, 0.6, 0.2, 0.4]])

    start = Position(epoch=1, iteration=3, epoch_iteration=0)
    train_one_epoch(model, criterion, torch.optim.SGD(model.parameters(), lr=1e-3), loader(),
                    torch.device("cpu"), start=start, steps=3, lr_at=lambda _: 1e-3,
                    scaler=torch.amp.GradScaler("cpu", enabled=False), ema=None, meter=EpochMeter(),
                    before_step=lambda pos: order.append(f"start {pos.iteration}"),
                    after_step=lambda pos, logs: order.append(f"end {pos.iteration}"))
    assert order == ["batch 0", "start 3", "forward", "end 4", "batch 1", "start 4", "forward", "end 5",
                     "batch 2", "start 5", "forward", "end 6"]


class _Events(Callback):
    """Records the per-step events in order."""

    def __init__(self):
        self.events: list = []

    def on_train_batch_start(self, run, pos):
        self.events.append(("start", pos.epoch, pos.epoch_iteration))

    def on_train_batch_end(self, run, pos, logs):
        self.events.append(("end", pos.epoch, pos.epoch_iteration))


def test_fit_writes_full_checkpoints_results_and_curves(tiny_config, tmp_path):
    cfg = load_config(tiny_config(**{"train.epochs": 2}))
    events = _Events()
    result = fit(cfg, resume="none", callbacks=[events])
    logs = tmp_path / "logs"
    names = set(os.listdir(logs))
    assert {"last.pt", "last.json", "epoch_001.pt", "epoch_001.json", "epoch_002.pt", "epoch_002.json",
            "best.pt", "best.json", "results.csv", "loss.png", "map.png", "tensorboard"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    state = ckpt.load_checkpoint(str(logs / "last.pt"))
    assert state["epoch"] == 2 and state["iteration"] == 2 * 2   # 18 train images, batch 8, drop_last
    assert state["epoch_iteration"] == 0 and re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", state["run"])
    assert state["ema"]["updates"] == 4
    assert state["optimizer"]["state"], "optimizer momentum is saved"
    assert state["scheduler"] == {"kind": "cos", "epochs": 2}
    assert state["config"]["train"]["epochs"] == 2 and state["trainer_version"]
    assert len(state["rng"]) == 1 and {"python", "numpy", "torch"} <= set(state["rng"][0])
    assert state["signature"]["num_classes"] == 3
    side = json.loads((logs / "epoch_002.json").read_text())
    assert side["epoch"] == 2 and set(side["metrics"]) == {"map50", "map", "val_loss"}
    assert side["iteration"] == 4 and side["epoch_iteration"] == 0 and side["run"] == state["run"]
    assert side["md5"] == hashlib.md5((logs / "epoch_002.pt").read_bytes()).hexdigest()
    assert side["size"] == (logs / "epoch_002.pt").stat().st_size
    rows = list(csv.DictReader(open(logs / "results.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and [r["phase"] for r in rows] == ["freeze", "unfreeze"]
    assert all(r["map50"] != "" and float(r["val_loss"]) > 0 for r in rows)
    assert result.final["map50"] == pytest.approx(float(rows[-1]["map50"]))
    assert set(result.final["per_class"]) == {"circle", "square", "triangle"}
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(logs / "tensorboard"))
    assert result.best_epoch in (1, 2)
    best = ckpt.read_sidecar(str(logs / "best.pt"))
    assert best.epoch == result.best_epoch
    # on_train_batch_start precedes each step, naming the step before it
    assert events.events == [("start", 0, 0), ("end", 0, 1), ("start", 0, 1), ("end", 0, 2),
                             ("start", 1, 0), ("end", 1, 1), ("start", 1, 1), ("end", 1, 2)]


class _PoisonWeights(Callback):
    """Sets every weight to NaN when the given epoch starts (a diverged run)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, run, epoch):  # epoch: epochs completed = index of this one
        if epoch == self.epoch:
            with torch.no_grad():
                for p in run.bare_model.parameters():
                    p.fill_(float("nan"))


def test_a_non_finite_loss_stops_with_a_clear_message_and_saves_nothing_corrupt(tiny_config, tmp_path):
    cfg = load_config(tiny_config(**{"train.epochs": 3, "train.eval_period": 10}))
    with pytest.raises(NonFiniteLossError, match=r"the loss became nan at epoch 2, iteration 1/2 .*lower train.lr"):
        fit(cfg, resume="none", callbacks=[_PoisonWeights(1)])
    logs = tmp_path / "logs"
    assert sorted(n for n in os.listdir(logs) if n.endswith(".pt")) == ["epoch_001.pt", "last.pt"]
    state = ckpt.load_checkpoint(str(logs / "last.pt"))
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


@pytest.fixture
def one_epoch(synth_voc, tmp_path_factory, tmp_path):
    """``(config, best.pt, final metrics)`` of a finished 1-epoch run of the tiny config,
    trained once for the session (tests/_once.py; tests/test_resume.py shares it)."""
    from _once import config_like, shared_run

    folder, made = shared_run(synth_voc, tmp_path_factory, "tiny-one-epoch",
                              {"train.epochs": 1, "train.freeze_epochs": 0})
    return config_like(folder, tmp_path / "logs"), str(folder / "logs" / "best.pt"), made["final"]


def test_eval_command_prints_per_class_ap_and_both_maps(one_epoch):
    from click.testing import CliRunner

    from trainer.cli import cli

    path, best, final = one_epoch
    res = CliRunner().invoke(cli, ["eval", "-c", path, "-w", best])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["class", "circle", "square", "triangle"]
    assert lines[4].startswith("mAP@0.5 ") and lines[5].startswith("mAP@0.5:0.95 ")
    as_json = CliRunner().invoke(cli, ["eval", "-c", path, "-w", best, "--json"])
    data = json.loads(as_json.stdout)
    # best.pt holds the EMA weights the training evaluated: the same numbers come back.
    assert data["map50"] == pytest.approx(final["map50"])
    assert data["map"] == pytest.approx(final["map"])
    assert set(data["per_class"]) == {"circle", "square", "triangle"}


def test_a_missing_annotation_file_stops_before_anything_is_written(tiny_config, tmp_path):
    from click.testing import CliRunner

    from trainer.cli import cli

    path = tiny_config(**{"data.train": str(tmp_path / "nope.txt")})
    res = CliRunner().invoke(cli, ["train", "-c", path])
    assert res.exit_code == 1
    assert ("Error: data.train='" + str(tmp_path / "nope.txt") + "' is neither an annotation file nor a "
            "split of a VOCdevkit") in res.output
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").glob("*.pt"))


def test_eval_refuses_weights_trained_on_other_classes_naming_both_lists(one_epoch, tmp_path):
    from click.testing import CliRunner

    from trainer.cli import cli
    from trainer.model import YoloV4Tiny

    path, best, _ = one_epoch
    # Same count, other names: the per-class AP would be mislabelled.
    res = CliRunner().invoke(cli, ["eval", "-c", path, "-w", best, "--set",
                                   "data.classes=[square, circle, triangle]"])
    assert res.exit_code == 1
    assert res.output == (f"Error: {best} was trained on 3 classes [circle, square, triangle] but the "
                          f"config names 3 classes [square, circle, triangle]; evaluate with the config "
                          f"it was trained with (data.classes)\n")
    # Weights that store no names (the port's .pth) are compared by their heads' class count.
    port = tmp_path / "voc20.pth"
    torch.save(YoloV4Tiny(20, input_size=64).state_dict(), port)
    res = CliRunner().invoke(cli, ["eval", "-c", path, "-w", str(port)])
    assert res.exit_code == 1
    assert res.output == (f"Error: {port} has heads for 20 classes (names not stored) but the config "
                          f"names 3 classes [circle, square, triangle]; evaluate with the config it "
                          f"was trained with (data.classes)\n")


@pytest.mark.slow
def test_deterministic_training_switches_torch_to_deterministic_algorithms(monkeypatch):
    """``train.deterministic`` turns on torch's deterministic algorithms (warnings only),
    without importing torch._inductor.config, 1.5 s of each start, unless something in the
    process loaded it already: then its flag is set too, as torch's own switch does."""
    import subprocess
    import sys

    import torch

    from trainer.config import load_config
    from trainer.engine import _set_determinism

    # A fresh process, where nothing loaded torch._inductor.config: it stays unloaded.
    code = "\n".join([
        "import sys, torch",
        "from trainer.config import load_config",
        "from trainer.engine import _set_determinism",
        "_set_determinism(load_config(None, ['train.deterministic=true']))",
        "print(torch.are_deterministic_algorithms_enabled(),",
        "      torch.is_deterministic_algorithms_warn_only_enabled(),",
        "      getattr(sys.modules.get('torch._inductor.config'), 'deterministic', None))",
    ])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out == ["True", "True", "None"]

    # Where it is loaded (this process: not a second fresh one that imports it, 1.5 s of CPU
    # more), its flag is set too. This process's switches are put back as they were.
    import torch._inductor.config as ic

    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    monkeypatch.setattr(ic, "deterministic", False)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    for flag in ("deterministic", "benchmark"):
        monkeypatch.setattr(torch.backends.cudnn, flag, getattr(torch.backends.cudnn, flag))
    torch.use_deterministic_algorithms(False)
    try:
        _set_determinism(load_config(None, ["train.deterministic=true"]))
        got = (torch.are_deterministic_algorithms_enabled(),
               torch.is_deterministic_algorithms_warn_only_enabled(), ic.deterministic)
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    assert got == (True, True, True)


def test_curves_are_drawn_at_most_every_so_often_and_at_the_end(tmp_path):
    """Drawing both curves takes about 0.2 s: after each of many short epochs that was a
    fifth of a run. They are drawn after an epoch once ``every_s`` has passed since the
    start or the last drawing, and at the end if an epoch came since; not on an interrupt
    (the stop's checkpoint comes first)."""
    from types import SimpleNamespace

    from trainer.callbacks import PlotCallback

    history: list = []
    run = SimpleNamespace(state=SimpleNamespace(history=history))
    png = tmp_path / "loss.png"

    def epoch(n: int) -> None:
        history.append({"epoch": n, "train_loss": 1.0 / n, "val_loss": 1.2 / n,
                        "map50": 0.1 * n, "map": 0.05 * n})
        cb.on_fit_epoch_end(run, None, history[-1])

    cb = PlotCallback(str(tmp_path), every_s=3600)
    cb.on_fit_start(run)
    epoch(1)
    epoch(2)
    cb.on_interrupt(run, KeyboardInterrupt())
    assert not png.exists()                      # not drawn yet: the hour has not passed
    cb.on_fit_end(run)
    assert png.exists() and (tmp_path / "map.png").exists()
    drawn = png.stat().st_mtime_ns
    cb.on_fit_end(run)                           # nothing new since: not drawn again
    assert png.stat().st_mtime_ns == drawn

    cb = PlotCallback(str(tmp_path), every_s=0)  # each epoch, once the time has passed
    cb.on_fit_start(run)
    png.unlink()
    epoch(3)
    assert png.exists()


def test_drawing_the_curves_neither_imports_pyplot_nor_switches_the_backend(tmp_path, monkeypatch):
    """A fit in a notebook draws its curves in the user's process: ``matplotlib.use("Agg")``
    switched the notebook's backend for good (its next plots were not shown), and every
    training process imported pyplot for two PNGs. A Figure of its own needs neither."""
    import sys

    import matplotlib

    from trainer.callbacks import plot_history

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)   # importing it now fails
    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: pytest.fail("the backend was switched"))
    history = [{"epoch": n, "train_loss": 1.0 / n, "val_loss": 1.2 / n, "map50": 0.1 * n,
                "map": 0.05 * n} for n in (1, 2)]
    written = plot_history(history, str(tmp_path))
    assert written == [str(tmp_path / "loss.png"), str(tmp_path / "map.png")]
    for path in written:
        with open(path, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["loss.png", "map.png"]   # no temporary left
