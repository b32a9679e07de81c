"""trainfault36: a dataset changed at the same path between a save in the middle of an epoch
and its resume (an image's line removed, a new version of the archive staged, a list cut
short by a staging that did not finish): the resume skipped the checkpoint's count of samples
in the new list's order, another order, so the rest of that epoch trained some samples twice
and left others out, without a word (only a changed data.train *path* was warned).

The checkpoint records the training list's fingerprint now (its images, in order, named
relative to their common folder: a dataset staged elsewhere is the same list; and their
boxes). A resume in the middle of an epoch from another list is refused in one line, exit 1,
unless data.allow_change is set (then a warning, and training goes on); at an epoch's end,
where the order is drawn afresh, a changed list is a warning."""
from __future__ import annotations

import logging
import os
import shutil
import signal
from pathlib import Path

import pytest
import yaml

from _messages import error_text
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.data.synth import make_synthetic_voc
from trainer.engine import fit
from trainer.errors import CheckpointError, TrainingInterrupted


class _StopAt(Callback):
    """A SIGTERM's stop asked after ``iteration`` (its save: autosave_<iteration>.pt)."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def on_train_batch_end(self, run, pos, logs) -> None:
        if pos.iteration == self.iteration:
            run.stop.request(signal.SIGTERM)


def _setup(tmp_path: Path):
    synth = make_synthetic_voc(tmp_path / "data", images=24, classes=3, seed=0,
                               image_size=(64, 120))
    return synth


def _config(tmp_path: Path, train_lines, val_lines, classes, **overrides) -> str:
    cfg = {"data": {"classes": str(classes), "train": str(train_lines), "val": str(val_lines),
                    "workers": 0, "root": str(tmp_path / "data")},
           "model": {"input_size": 64, "width": 0.25},
           "train": {"epochs": 2, "freeze_epochs": 0, "batch_size": 4, "freeze_batch_size": 4,
                     "save_period": 1, "eval_period": 1, "out_dir": str(tmp_path / "logs"),
                     "deterministic": True, "device": "cpu", "mosaic": False, "mixup": False}}
    for key, value in overrides.items():
        section, name = key.split(".")
        cfg.setdefault(section, {})[name] = value
    path = tmp_path / f"c{len(list(tmp_path.glob('c*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _stopped_at(tmp_path: Path, synth, iteration: int) -> str:
    """Train until ``iteration`` and stop there; the config's path."""
    config = _config(tmp_path, synth.train_lines_file, synth.val_lines_file, synth.classes_file)
    with pytest.raises(TrainingInterrupted):
        fit(load_config(config), resume="none", callbacks=[_StopAt(iteration)])
    assert os.path.isfile(tmp_path / "logs" / f"autosave_{iteration:08d}.pt")
    return config


def _drop_line(path, index: int = 5) -> None:
    lines = Path(path).read_text().splitlines(keepends=True)
    del lines[index]
    Path(path).write_text("".join(lines))


@pytest.mark.parametrize("change", ["a line removed", "the same lines reordered"])
def test_a_mid_epoch_resume_from_another_list_is_refused(tmp_path, one_torch_thread, change):
    synth = _setup(tmp_path)
    config = _stopped_at(tmp_path, synth, 2)
    lines = Path(synth.train_lines_file).read_text().splitlines(keepends=True)
    if change == "a line removed":
        _drop_line(synth.train_lines_file)
        counts = "18 images then, 17 now"
    else:
        Path(synth.train_lines_file).write_text("".join(reversed(lines)))
        counts = "18 images then and now, not the same ones in the same order"

    with pytest.raises(CheckpointError) as refused:
        fit(load_config(config), resume="auto")

    saved = tmp_path / "logs" / "autosave_00000002.pt"
    assert error_text(refused.value) == (
        f"Error: cannot resume from {saved} in the middle of epoch 1: the training list "
        f"(data.train) changed since it was saved ({counts}), and the rest of that epoch would "
        f"be drawn from the new list in another order (samples trained twice, others left out); "
        f"put the list back as it was, or resume with --set data.allow_change=true to go on "
        f"with the new one")
    assert refused.value.exit_code == 1


def test_data_allow_change_resumes_with_a_warning(tmp_path, one_torch_thread, caplog):
    synth = _setup(tmp_path)
    config = _stopped_at(tmp_path, synth, 2)
    _drop_line(synth.train_lines_file)
    cfg = load_config(config)
    cfg.data.allow_change = True

    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = fit(cfg, resume="auto")

    assert os.path.basename(result.resumed_from) == "autosave_00000002.pt"
    saved = tmp_path / "logs" / "autosave_00000002.pt"
    assert [r.getMessage() for r in caplog.records if "training list" in r.getMessage()] == [
        f"{saved} was saved in the middle of epoch 1 from another training list (data.train; "
        f"18 images then, 17 now): data.allow_change is set, so the rest of that epoch is drawn "
        f"from the new list (the 8 samples it trained skipped in the new list's order)"]
    # The run's next saves hold the new list: a resume from them is no change.
    result = fit(load_config(_config(tmp_path, synth.train_lines_file, synth.val_lines_file,
                                     synth.classes_file, **{"train.epochs": 3})), resume="auto")
    assert result.epochs_run == 1


def test_the_same_list_staged_elsewhere_resumes_without_a_word(
        tmp_path, one_torch_thread, caplog):
    """Another machine (or data.root) holds the same dataset at another path: the lines name
    other absolute paths, and it is the same list."""
    synth = _setup(tmp_path)
    _stopped_at(tmp_path, synth, 2)
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "data", moved)
    for name in ("2007_train.txt", "2007_val.txt"):
        text = (moved / name).read_text().replace(str(tmp_path / "data"), str(moved))
        (moved / name).write_text(text)
    config = _config(tmp_path, moved / "2007_train.txt", moved / "2007_val.txt",
                     moved / "classes.txt")

    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = fit(load_config(config), resume="auto")

    assert os.path.basename(result.resumed_from) == "autosave_00000002.pt"
    assert not [r for r in caplog.records if "training list" in r.getMessage()]


def test_an_epoch_end_resume_from_another_list_is_said(tmp_path, one_torch_thread, caplog):
    synth = _setup(tmp_path)
    config = _config(tmp_path, synth.train_lines_file, synth.val_lines_file, synth.classes_file,
                     **{"train.epochs": 1})
    fit(load_config(config), resume="none")
    _drop_line(synth.train_lines_file)
    config = _config(tmp_path, synth.train_lines_file, synth.val_lines_file, synth.classes_file)

    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = fit(load_config(config), resume="auto")

    assert result.epochs_run == 1
    saved = tmp_path / "logs" / os.path.basename(result.resumed_from)
    assert [r.getMessage() for r in caplog.records if "training list" in r.getMessage()] == [
        f"{saved} was saved from another training list (data.train; 18 images then, 17 now); "
        f"training goes on with the new one"]


def test_changed_boxes_of_the_same_images_are_said(tmp_path, one_torch_thread, caplog):
    """Same images, same order, other boxes (a relabelled version of the dataset): the order
    holds, so the resume goes on, with a warning."""
    synth = _setup(tmp_path)
    config = _stopped_at(tmp_path, synth, 2)
    lines = Path(synth.train_lines_file).read_text().splitlines()
    lines[3] = lines[3].split()[0]   # (its boxes gone)
    Path(synth.train_lines_file).write_text("\n".join(lines) + "\n")

    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = fit(load_config(config), resume="auto")

    assert os.path.basename(result.resumed_from) == "autosave_00000002.pt"
    saved = tmp_path / "logs" / "autosave_00000002.pt"
    assert [r.getMessage() for r in caplog.records if "training list" in r.getMessage()] == [
        f"{saved} was saved from the same images of the training list (data.train) with other "
        f"boxes; training goes on with the new ones"]


def test_a_checkpoint_without_the_record_resumes_as_before(tmp_path, one_torch_thread, caplog):
    """Saved by an earlier version (no train_samples): nothing to compare, no refusal."""
    from trainer import checkpoint as ckpt

    synth = _setup(tmp_path)
    config = _stopped_at(tmp_path, synth, 2)
    path = tmp_path / "logs" / "autosave_00000002.pt"
    state = ckpt.load_checkpoint(str(path))
    assert state.pop("train_samples")["count"] == 18
    older = tmp_path / "older" / "autosave_00000002.pt"
    ckpt.save_checkpoint(state, str(older))
    shutil.rmtree(tmp_path / "logs")
    _drop_line(synth.train_lines_file)

    with caplog.at_level(logging.WARNING, logger="trainer"):
        result = fit(load_config(config), resume=str(older))

    assert result.epochs_run == 2
    assert not [r for r in caplog.records if "training list" in r.getMessage()]
