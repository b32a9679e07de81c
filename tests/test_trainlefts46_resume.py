"""trainlefts46 (2, 3): what a resume carries over besides the tensors.

2. ``epoch_time_s`` in results.csv after a mid-epoch resume counted only the part of the epoch
   after the resume (the run's clock started again at it). Now the checkpoint holds the time
   spent in the epoch so far (``epoch_time_s``) and the row counts the whole epoch; one of
   before it, saved mid-epoch, leaves the row's time empty (unknown), not a wrong number.
3. A checkpoint of trainer 0.1.0 (no class names in it) resumed with the classes reordered went
   on silently. Its config's inline names are checked as today's ``class_names`` are; where it
   names only a file, a warning says what cannot be checked.

The tiniest real run (tests/_tiny_run.py: 12 synthetic images, 2 steps an epoch), no Drive. The
epoch's clock is a fake one moved 100 s at every step's start, so that the times are exact."""
from __future__ import annotations

import csv
import logging
import shutil
import signal
from types import SimpleNamespace

import pytest
import torch

from _tiny_run import tiny_run_config
from trainer import checkpoint as ckpt
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import CheckpointError, TrainingInterrupted

STEP_S = 100.0


class _Clock(Callback):
    """The epoch loop's clock (``trainer.one_epoch``'s ``time.perf_counter``): it moves
    STEP_S as each step begins, and a SIGTERM's stop is asked after ``stop_at``."""

    def __init__(self, stop_at: int = 0) -> None:
        self.now, self.stop_at = 1000.0, stop_at

    def perf_counter(self) -> float:
        return self.now

    def on_train_batch_start(self, run, pos) -> None:
        self.now += STEP_S

    def on_train_batch_end(self, run, pos, logs) -> None:
        if pos.iteration == self.stop_at:
            run.stop.request(signal.SIGTERM)


@pytest.fixture
def clock(monkeypatch):
    made = _Clock()
    monkeypatch.setattr("trainer.one_epoch.time", SimpleNamespace(perf_counter=made.perf_counter))
    return made


def _times(out_dir) -> list[str]:
    with open(out_dir / "results.csv", newline="") as fh:
        return [row["epoch_time_s"] for row in csv.DictReader(fh)]


def test_a_mid_epoch_resume_counts_the_whole_epochs_time(tmp_path, clock, one_torch_thread):
    """Stopped after step 1 of 2, resumed: the epoch's time is its 2 steps' (200 s), where it
    was the last step's alone (100 s), as an uninterrupted epoch's is (the next test's)."""
    cfg = load_config(tiny_run_config(tmp_path, epochs=1, logs=None))
    clock.stop_at = 1
    with pytest.raises(TrainingInterrupted):
        fit(cfg, resume="none", callbacks=[clock])
    saved = ckpt.load_checkpoint(str(tmp_path / "logs" / "autosave_00000001.pt"))
    clock.stop_at = 0
    result = fit(cfg, resume="auto", callbacks=[clock])
    assert result.epochs_run == 1
    assert _times(tmp_path / "logs") == ["200"]   # (before: ["100"])
    assert (saved["epoch_iteration"], saved.get("epoch_time_s")) == (1, STEP_S)


def test_a_resume_from_a_checkpoint_without_the_epochs_time_leaves_it_empty(
        tmp_path, clock, one_torch_thread, caplog):
    """The same stop's checkpoint as one of before (no ``epoch_time_s``): the resumed epoch's
    time is unknown, so its row says nothing (not 100 s); the next epoch's is whole again, and
    the epoch's line says the time is unknown."""
    cfg = load_config(tiny_run_config(tmp_path, epochs=2, logs=None))
    clock.stop_at = 1
    with pytest.raises(TrainingInterrupted):
        fit(cfg, resume="none", callbacks=[clock])
    path = tmp_path / "logs" / "autosave_00000001.pt"
    state = torch.load(path, weights_only=False)
    del state["epoch_time_s"]
    ckpt.save_checkpoint(state, str(path))   # (its sidecar too: the file as a trainer wrote it)
    clock.stop_at = 0
    with caplog.at_level(logging.INFO, logger="trainer"):
        fit(cfg, resume="auto", callbacks=[clock])
    assert _times(tmp_path / "logs") == ["", "200"]
    said = [r.getMessage() for r in caplog.records if " done in " in r.getMessage()]
    assert said[0].startswith("epoch 1/2 done in an unknown time (resumed from a checkpoint "
                              "that does not say the time before) ("), said
    assert said[0].endswith("; the time left unknown"), said
    assert said[1].startswith("epoch 2/2 done in 200.0 s ("), said


# --------------------------------------------------------------------------- 3: classes

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch of the tiny run (its classes from a file): (its folder, epoch_001.pt)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("trained")
    cfg = load_config(tiny_run_config(folder, epochs=1, logs=None))
    fit(cfg, resume="none")
    return folder, folder / "logs" / "epoch_001.pt"


def _as_0_1_0(src, dst, classes=None) -> str:
    """``src`` as trainer 0.1.0 wrote it (format 1: ``global_step``, no run, no class names;
    ``classes``: its config's ``data.classes`` instead of the file)."""
    state = torch.load(src, weights_only=False)
    for key in ("iteration", "epoch_iteration", "run", "class_names", "epoch_time_s"):
        state.pop(key, None)
    state.update(format_version=1, global_step=3)
    if classes is not None:
        state["config"]["data"]["classes"] = classes
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, dst)
    return str(dst)


def _config(folder, out_dir, classes) -> SimpleNamespace:
    return load_config(tiny_run_config(folder, epochs=2, logs=None, out_dir=out_dir),
                       [f"data.classes=[{', '.join(classes)}]"])


def _names(folder) -> list[str]:
    return (folder / "data" / "classes.txt").read_text().split()


def test_a_0_1_0_checkpoint_resumed_with_its_classes_reordered_is_warned_of(
        trained, tmp_path, caplog, one_torch_thread):
    """Its classes from a file it does not hold: whether the config's are those, in that
    order, cannot be checked. It goes on (most such resumes give the same file), said."""
    folder, src = trained
    old = _as_0_1_0(src, tmp_path / "old" / "last.pt")
    turned = list(reversed(_names(folder)))
    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = fit(_config(folder, tmp_path / "run", turned), resume=old)
    assert result.epochs_run == 1
    warned = [r.getMessage() for r in caplog.records if "does not record the classes" in
              r.getMessage()]
    assert warned == [
        f"{old} does not record the classes it was trained on (a checkpoint of trainer 0.1.0; "
        f"its config read them from {folder / 'data' / 'classes.txt'}): that the config's "
        f"[{', '.join(turned)}] are those, in that order, cannot be checked (a class is its "
        f"place in the list; reordered, each output goes on learning another class): if it is "
        f"not the list it was trained on, stop and resume with that one"], warned


def test_a_0_1_0_checkpoint_whose_config_names_its_classes_is_refused_reordered(
        trained, tmp_path):
    """Its config gave the names inline: they are checked as today's ``class_names`` are."""
    folder, src = trained
    names = _names(folder)
    old = _as_0_1_0(src, tmp_path / "old" / "last.pt", classes=names)
    turned = list(reversed(names))
    with pytest.raises(CheckpointError) as refused:
        fit(_config(folder, tmp_path / "run", turned), resume=old)
    assert str(refused.value).startswith(
        f"cannot resume from {old}: it was trained on the classes [{', '.join(names)}] and the "
        f"config names [{', '.join(turned)}] (data.classes; a class is its place in the "
        f"list). Resume with the classes it was trained on, or start a new run that "
        f"fine-tunes from it: "), str(refused.value)


def test_todays_checkpoint_resumed_with_its_classes_reordered_is_refused_unwarned(
        trained, tmp_path, caplog):
    """Today's holds its class names: refused, as before; and no 0.1.0 warning."""
    folder, src = trained
    names = _names(folder)
    copy = tmp_path / "old" / "last.pt"
    copy.parent.mkdir()
    shutil.copy(src, copy)
    turned = list(reversed(names))
    with caplog.at_level(logging.WARNING, logger="trainer"), \
            pytest.raises(CheckpointError) as refused:
        fit(_config(folder, tmp_path / "run", turned), resume=str(copy))
    assert str(refused.value).startswith(
        f"cannot resume from {copy}: it was trained on the classes [{', '.join(names)}] and "
        f"the config names [{', '.join(turned)}]"), str(refused.value)
    assert not [r for r in caplog.records if "does not record the classes" in r.getMessage()]
