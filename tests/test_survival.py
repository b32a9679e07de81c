"""A disconnect costs minutes, not epochs: mid-epoch checkpoints (time-based and on a stop
request) from which a resume continues at that iteration, bit-identical to a run that was
never interrupted (CPU, train.deterministic, one thread)."""
from __future__ import annotations

import csv
import os
import re
import signal

import pytest
import torch

from trainer import checkpoint as ckpt
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import TrainingInterrupted

# Whole training runs, stopped and resumed: slow end-to-end tests.
pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]

#: 18 training images, batch 8, drop_last: 2 steps per epoch; 3 epochs = 6 iterations.
KW = {"train.epochs": 3, "train.eval_period": 1, "train.save_period": 2, "train.save_minutes": 0}


class StopAt(Callback):
    """Asks for a stop as SIGTERM would, after the given iteration (before the policy looks)."""

    def __init__(self, iteration):
        self.iteration = iteration

    def on_train_batch_end(self, run, pos, logs):
        if pos.iteration == self.iteration:
            run.stop.request(signal.SIGTERM)


class StopDuringEvaluation(Callback):
    """Asks for a stop from inside the validation loss of the epoch that ends at ``iteration``."""

    def __init__(self, iteration):
        self.iteration = iteration

    def on_train_batch_end(self, run, pos, logs):
        if pos.iteration != self.iteration:
            return
        criterion, stop = run.criterion, run.stop

        def asking(outputs, targets):
            if not torch.is_grad_enabled():      # evaluation: the stop lands in the middle of it
                stop.request(signal.SIGTERM)
            return criterion(outputs, targets)

        run.criterion = asking


class Steps(Callback):
    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, run, pos, logs):
        self.rows.append((pos.iteration, pos.epoch, pos.epoch_iteration, logs["lr"], logs["loss"]))


def _weights_equal(a, b):
    sa, sb = ckpt.load_checkpoint(a), ckpt.load_checkpoint(b)
    for part in ("model",):
        for k, v in sa[part].items():
            assert torch.equal(v, sb[part][k]), k
    for k, v in sa["ema"]["model"].items():
        assert torch.equal(v, sb["ema"]["model"][k]), k
    assert sa["ema"]["updates"] == sb["ema"]["updates"]
    return sa, sb


def _csv(path):
    with open(path) as fh:
        return [{k: r[k] for k in ("epoch", "train_loss", "box", "obj", "cls", "val_loss", "map50", "lr")}
                for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def reference(synth_voc, tmp_path_factory):
    """An uninterrupted run (the tiny config's settings) and what it did at every iteration,
    trained once for all the session's workers (tests/_once.py; the synthetic data of every
    worker is the same, seed 0)."""
    import torch as _torch
    import yaml

    from _once import made_once

    def make(out):
        cfg = {"data": {"classes": str(synth_voc.classes_file), "train": str(synth_voc.train_lines_file),
                        "val": str(synth_voc.val_lines_file), "workers": 0, "root": str(out / "data")},
               "model": {"input_size": 64, "width": 0.25},
               "train": {"freeze_epochs": 1, "batch_size": 8, "freeze_batch_size": 8, "out_dir": str(out / "ref"),
                         "deterministic": True, "device": "cpu", "mosaic": True, "mixup": True,
                         **{k.split(".")[1]: v for k, v in KW.items()}}}
        (out / "ref.yaml").write_text(yaml.safe_dump(cfg))
        steps = Steps()
        threads = _torch.get_num_threads()
        _torch.set_num_threads(1)
        try:
            fit(load_config(str(out / "ref.yaml")), resume="none", callbacks=[steps])
        finally:
            _torch.set_num_threads(threads)
        return steps.rows

    out, rows = made_once(tmp_path_factory, "survival-reference", make)
    return out / "ref", rows


def test_a_stop_mid_epoch_saves_there_and_the_resume_is_bit_identical(tiny_config, tmp_path, reference,
                                                                      caplog):
    ref, ref_rows = reference
    out = tmp_path / "run"
    cfg = load_config(tiny_config(**KW, **{"train.out_dir": str(out)}))
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(cfg, resume="none", callbacks=[StopAt(3)])          # epoch 2, after its first step
    assert stopped.value.exit_code == 143
    assert str(stopped.value) == (f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt "
                                  f"is saved in {out}; resume with --resume auto")
    side = ckpt.read_sidecar(str(out / "autosave_00000003.pt"))
    assert (side.epoch, side.iteration, side.epoch_iteration) == (1, 3, 1)

    steps = Steps()
    with caplog.at_level("INFO", logger="trainer"):
        result = fit(cfg, resume="auto", callbacks=[steps])
    assert f"resumed from {out / 'autosave_00000003.pt'} at epoch 2, iteration 3 (run {side.run};" in caplog.text
    # The same iterations, learning rates and losses as the uninterrupted run, from iteration 4 on.
    assert steps.rows == ref_rows[3:]
    assert result.resumed_from == str(out / "autosave_00000003.pt") and result.epochs_run == 2
    _weights_equal(str(ref / "last.pt"), str(out / "last.pt"))
    # results.csv: the epoch cut in two has the same mean losses as the uninterrupted one.
    assert _csv(out / "results.csv") == _csv(ref / "results.csv")


def test_a_stop_during_evaluation_keeps_the_trained_epoch(tiny_config, tmp_path, reference):
    ref, ref_rows = reference
    out = tmp_path / "run"
    cfg = load_config(tiny_config(**KW, **{"train.out_dir": str(out)}))
    with pytest.raises(TrainingInterrupted, match=r"^stopped by SIGTERM at epoch 2, iteration 4: "
                                                  r"autosave_00000004\.pt is saved"):
        fit(cfg, resume="none", callbacks=[StopDuringEvaluation(4)])
    side = ckpt.read_sidecar(str(out / "autosave_00000004.pt"))
    # Both steps of epoch 2 are done; the epoch is not (its evaluation was cut short).
    assert (side.epoch, side.iteration, side.epoch_iteration) == (1, 4, 2)
    assert ckpt.read_sidecar(str(out / "last.pt")).epoch == 1

    steps = Steps()
    fit(cfg, resume="auto", callbacks=[steps])
    assert steps.rows == ref_rows[4:]
    _weights_equal(str(ref / "last.pt"), str(out / "last.pt"))
    assert _csv(out / "results.csv") == _csv(ref / "results.csv")


def test_time_checkpoints_are_written_mid_epoch_and_only_the_newest_two_kept(tiny_config, tmp_path,
                                                                             caplog):
    out = tmp_path / "run"
    # A tiny interval: a checkpoint is due after every iteration.
    cfg = load_config(tiny_config(**{**KW, "train.save_minutes": 1e-6, "train.out_dir": str(out)}))
    with caplog.at_level("DEBUG", logger="trainer"):
        fit(cfg, resume="none")
    autosaves = sorted(n for n in os.listdir(out) if n.startswith("autosave_") and n.endswith(".pt"))
    assert 1 <= len(autosaves) <= 2
    for name in autosaves:
        it = int(re.fullmatch(r"autosave_(\d{8})\.pt", name).group(1))
        side = ckpt.read_sidecar(str(out / name))
        assert side.iteration == it and (side.epoch, side.epoch_iteration) == ((it - 1) // 2, (it - 1) % 2 + 1)
        assert ckpt.position_of(ckpt.load_checkpoint(str(out / name))) == (side.epoch, it, side.epoch_iteration)
    blocked = [float(m) for m in re.findall(r"checkpoint autosave_\d+\.pt at .*: training blocked ([\d.]+) s",
                                            caplog.text)]
    assert len(blocked) == 6 and max(blocked) < 5
    assert re.search(r"\d+ checkpoints saved; training waited [\d.]+ s for them in all", caplog.text)
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


def test_a_resume_with_loader_workers_is_bit_identical(tiny_config, tmp_path, reference):
    ref, ref_rows = reference
    out = tmp_path / "run"
    cfg = load_config(tiny_config(**KW, **{"train.out_dir": str(out), "data.workers": 2}))
    with pytest.raises(TrainingInterrupted):
        fit(cfg, resume="none", callbacks=[StopAt(5)])
    steps = Steps()
    fit(cfg, resume="auto", callbacks=[steps])
    assert steps.rows == ref_rows[5:]
    _weights_equal(str(ref / "last.pt"), str(out / "last.pt"))
