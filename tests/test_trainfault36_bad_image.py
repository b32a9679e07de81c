"""trainfault36: an image that cannot be read, met in the middle of an epoch (a JPEG cut short
by a copy that did not finish, a file gone from a staged dataset on a flaky mount), ended the
run with one line and nothing saved: everything trained since the last autosave or epoch
(up to train.save_minutes, 10 min by default) was lost. The state of the last step is saved
now, as a SIGTERM's stop saves it, and the line names the file and what to do, exit 1.

Real torch, real files: the damaged image is one the shuffled order reaches at the third step
(two steps trained before it), with data.workers 0 (read in this process) and 1 (the error
arrives re-raised from the worker)."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from trainer import checkpoint as ckpt
from trainer.config import load_config
from trainer.data.sampler import ResumableSampler
from trainer.data.synth import make_synthetic_voc
from trainer.engine import fit
from trainer.errors import TrainingInterrupted

SEED = 11   # train.seed's default: the order of epoch 1


def _dataset(tmp_path: Path):
    return make_synthetic_voc(tmp_path / "data", images=24, classes=3, seed=0,
                              image_size=(64, 120))


def _config(tmp_path: Path, synth, **overrides) -> str:
    cfg = {"data": {"classes": str(synth.classes_file), "train": str(synth.train_lines_file),
                    "val": str(synth.val_lines_file), "workers": 0,
                    "root": str(tmp_path / "data")},
           "model": {"input_size": 64, "width": 0.25},
           "train": {"epochs": 1, "freeze_epochs": 0, "batch_size": 4, "freeze_batch_size": 4,
                     "save_period": 1, "eval_period": 1, "out_dir": str(tmp_path / "logs"),
                     "deterministic": True, "device": "cpu", "mosaic": False, "mixup": False}}
    for key, value in overrides.items():
        section, name = key.split(".")
        cfg.setdefault(section, {})[name] = value
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _lines(path) -> list[str]:
    return Path(path).read_text().splitlines()


def _image_of_step(synth, step: int, replicas: int = 1, rank: int = 0, batch: int = 4) -> str:
    """An image epoch 1's order gives this rank at its step ``step`` (1-based) alone."""
    lines = _lines(synth.train_lines_file)
    order = list(ResumableSampler(range(len(lines)), num_replicas=replicas, rank=rank,
                                  shuffle=True, seed=SEED, drop_last=replicas > 1))
    return lines[order[(step - 1) * batch + 1]].split()[0]


def _damage(path: str) -> bytes:
    """Cut ``path`` to a third (a copy that did not finish); its bytes before."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 3])
    return data


@pytest.mark.parametrize("workers", [0, 1])
def test_a_damaged_image_mid_epoch_saves_the_last_step_then_stops(
        tmp_path, one_torch_thread, workers):
    synth = _dataset(tmp_path)
    bad = _image_of_step(synth, 3)
    good = _damage(bad)
    cfg = load_config(_config(tmp_path, synth, **{"data.workers": workers}))

    with pytest.raises(TrainingInterrupted) as stopped:
        fit(cfg, resume="none")

    out = cfg.train.out_dir
    text = str(stopped.value)
    assert stopped.value.exit_code == 1
    assert text == (
        f"stopped by an unreadable image at epoch 1, iteration 2: autosave_00000002.pt is "
        f"saved in {out}; resume with --resume auto (cannot read image {bad}: its header says "
        f"{_size(good)}, but its pixels cannot be decoded (the file is cut short or damaged: a "
        f"copy or download that did not finish?): replace that file with a readable copy before "
        f"you resume; or remove its line from the annotation file {synth.train_lines_file} and "
        f"resume with --set data.allow_change=true (the rest of the epoch is drawn from the new "
        f"list))"), text
    saved = ckpt.load_checkpoint(os.path.join(out, "autosave_00000002.pt"))
    assert ckpt.position_of(saved) == (0, 2, 2)

    Path(bad).write_bytes(good)   # (the user's fix: a good copy)
    result = fit(cfg, resume="auto")
    assert os.path.basename(result.resumed_from) == "autosave_00000002.pt"
    assert result.epochs_run == 1 and result.final["map50"] is not None


def _size(data: bytes) -> str:
    import cv2
    import numpy as np

    h, w = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[:2]
    return f"{w}x{h}"


def test_an_image_gone_from_disk_mid_epoch_saves_the_last_step(tmp_path, one_torch_thread):
    synth = _dataset(tmp_path)
    bad = _image_of_step(synth, 2)
    os.remove(bad)   # (a staged dataset on a mount that lost it)
    cfg = load_config(_config(tmp_path, synth, **{"data.workers": 1}))

    with pytest.raises(TrainingInterrupted) as stopped:
        fit(cfg, resume="none")

    text = str(stopped.value)
    assert text.startswith(
        f"stopped by an unreadable image at epoch 1, iteration 1: autosave_00000001.pt is saved "
        f"in {cfg.train.out_dir}; resume with --resume auto (cannot read image {bad}: No such "
        f"file or directory: replace that file with a readable copy before you resume; or "
        f"remove its line from the annotation file {synth.train_lines_file} and resume with "), text
    assert stopped.value.exit_code == 1


def test_a_damaged_image_in_the_first_batch_saves_nothing_untrained(tmp_path, one_torch_thread):
    synth = _dataset(tmp_path)
    bad = _image_of_step(synth, 1)
    _damage(bad)
    cfg = load_config(_config(tmp_path, synth))

    with pytest.raises(TrainingInterrupted) as stopped:
        fit(cfg, resume="none")

    assert str(stopped.value).startswith(
        f"stopped by an unreadable image before the first step: nothing was trained, nothing "
        f"is saved (cannot read image {bad}: its header says"), str(stopped.value)
    assert not [n for n in os.listdir(cfg.train.out_dir) if n.endswith(".pt")]


def test_a_damaged_validation_image_saves_the_trained_epoch(tmp_path, one_torch_thread):
    """The evaluation after the epoch met it: the epoch's save comes after the evaluation, so
    the whole epoch was lost."""
    synth = _dataset(tmp_path)
    bad = _lines(synth.val_lines_file)[0].split()[0]
    _damage(bad)
    cfg = load_config(_config(tmp_path, synth))

    with pytest.raises(TrainingInterrupted) as stopped:
        fit(cfg, resume="none")

    text = str(stopped.value)
    assert text.startswith(
        f"stopped by an unreadable image at epoch 1, iteration 4: autosave_00000004.pt is saved "
        f"in {cfg.train.out_dir}; resume with --resume auto (cannot read image {bad}: "), text
    assert f"remove its line from the annotation file {synth.val_lines_file} " in text, text
    assert ckpt.position_of(ckpt.load_checkpoint(
        os.path.join(cfg.train.out_dir, "autosave_00000004.pt"))) == (0, 4, 4)


def test_a_damaged_annotation_xml_at_the_evaluation_saves_the_trained_epoch(
        tmp_path, one_torch_thread):
    synth = _dataset(tmp_path)
    image = Path(_lines(synth.val_lines_file)[0].split()[0])
    xml = image.parent.parent / "Annotations" / f"{image.stem}.xml"
    xml.write_text(xml.read_text()[:40])   # (cut short)
    cfg = load_config(_config(tmp_path, synth))

    with pytest.raises(TrainingInterrupted) as stopped:
        fit(cfg, resume="none")

    text = str(stopped.value)
    assert text.startswith(
        f"stopped by an unreadable annotation at epoch 1, iteration 4: autosave_00000004.pt is "
        f"saved in {cfg.train.out_dir}; resume with --resume auto ("), text
    assert text.endswith(f"(annotation {xml} is not valid XML: no element found: line 3, "
                         "column 1: replace that file with a readable copy before you resume)"), \
        text


def _rank(rank: int, port: int, config: str, out: str) -> None:
    import torch

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        fit(load_config(config), resume="none")
    except TrainingInterrupted as exc:
        Path(out, f"stop{rank}.txt").write_text(f"{exc.exit_code} {exc}")
    except Exception as exc:
        Path(out, f"error{rank}.txt").write_text(f"{type(exc).__name__}: {exc}")


def test_ddp_rank_1s_damaged_image_names_it_and_rank_0_saves(tmp_path):
    """Rank 1 meets the image while rank 0 is in the step's collectives: rank 1 ends in one
    line naming the file; rank 0 saves the last step's state alone (trainer.peer_loss), and
    neither waits for the process group's timeout."""
    import torch.multiprocessing as mp

    from _ports import free_port

    synth = _dataset(tmp_path)
    bad = _image_of_step(synth, 2, replicas=2, rank=1)
    _damage(bad)
    config = _config(tmp_path, synth, **{"train.batch_size": 8, "train.save_minutes": 0,
                                         "data.max_val_images": 1})
    mp.start_processes(_rank, args=(free_port(), config, str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")

    assert not list(tmp_path.glob("error*.txt")), [p.read_text() for p in tmp_path.glob("error*")]
    line = (tmp_path / "stop1.txt").read_text()
    assert line.startswith(
        f"1 stopped by an unreadable image at epoch 1, iteration 1 on rank 1, while it waited "
        f"for its batch: the other ranks were in the step already, so rank 0 saves alone what "
        f"it can, its line says what; --resume auto goes on from the newest checkpoint (cannot "
        f"read image {bad}: "), line
    out = tmp_path / "logs"
    assert re.fullmatch(rf"1 stopped by the loss of rank 1 at epoch 1, iteration 1: "
                        rf"autosave_00000001\.pt is saved in {re.escape(str(out))}; resume with "
                        rf"--resume auto \(.*\)", (tmp_path / "stop0.txt").read_text()), \
        (tmp_path / "stop0.txt").read_text()
    assert ckpt.position_of(ckpt.load_checkpoint(str(out / "autosave_00000001.pt"))) == (0, 1, 1)


def test_ddp_rank_0s_damaged_image_saves_there_and_rank_1_ends(tmp_path):
    """Rank 0 meets the image while rank 1 is in the step's collectives: rank 0 saves the last
    step's state alone and names the file; rank 1 ends too (its peer is gone), no hang."""
    import torch.multiprocessing as mp

    from _ports import free_port

    synth = _dataset(tmp_path)
    bad = _image_of_step(synth, 2, replicas=2, rank=0)
    _damage(bad)
    config = _config(tmp_path, synth, **{"train.batch_size": 8, "train.save_minutes": 0,
                                         "data.max_val_images": 1})
    mp.start_processes(_rank, args=(free_port(), config, str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")

    out = tmp_path / "logs"
    line = (tmp_path / "stop0.txt").read_text()
    assert line.startswith(
        f"1 stopped by an unreadable image at epoch 1, iteration 1: autosave_00000001.pt is "
        f"saved in {out}; resume with --resume auto (cannot read image {bad}: "), line
    assert ckpt.position_of(ckpt.load_checkpoint(str(out / "autosave_00000001.pt"))) == (0, 1, 1)
    assert (tmp_path / "stop1.txt").read_text().startswith("1 stopped by the loss of rank 0"), \
        [p.read_text() for p in tmp_path.glob("*.txt")]


def test_a_disk_cache_entry_damaged_mid_epoch_saves_and_says_delete_it(
        tmp_path, one_torch_thread):
    """data.cache=disk reads its entries as the epoch goes: one damaged meanwhile (a disk
    error, a sync tool) stopped the run unsaved too. (A start finds a damaged entry and
    writes it again.)"""
    from trainer.callbacks import Callback
    from trainer.data.cache import open_cache

    synth = _dataset(tmp_path)
    paths = [line.split()[0] for line in _lines(synth.train_lines_file)]
    entry = Path(open_cache("disk", paths, 64, tmp_path / "data" / "image-cache").entries[
        paths.index(_image_of_step(synth, 3))])

    class Damage(Callback):
        def on_train_batch_end(self, run, pos, logs) -> None:
            if pos.iteration == 1:
                entry.write_bytes(entry.read_bytes()[:100])

    cfg = load_config(_config(tmp_path, synth, **{"data.cache": "disk"}))
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(cfg, resume="none", callbacks=[Damage()])

    assert str(stopped.value) == (
        f"stopped by an unreadable image at epoch 1, iteration 2: autosave_00000002.pt is "
        f"saved in {cfg.train.out_dir}; resume with --resume auto (the image cache entry {entry} "
        f"is damaged; delete it and start again)"), str(stopped.value)


def test_a_data_error_that_names_no_file_is_no_unreadable_file():
    """No room in /dev/shm for a spawned worker's copy of data.cache=ram (raised as the
    workers start): no file is to blame; it goes on as before, not as a stop that names one."""
    from trainer import unreadable
    from trainer.errors import DataError
    from trainer.stopping import StopFlag

    stop = StopFlag(10)
    assert not unreadable.met(stop, DataError(
        "data.cache=ram: workers started by spawn/forkserver share the cache through /dev/shm, "
        "which has 0.1 GiB free for 3.0 GiB; use data.cache=disk"))
    assert not stop.is_set()


def test_with_drive_logs_the_stop_pushes_its_save_and_a_new_machine_goes_on_from_it(
        tmp_path, one_torch_thread, emulator, drive_env, local_state):
    """The save is verified on drive.logs before the run ends (no SIGKILL follows such a
    stop): a fresh machine (an empty run folder) resumes from it, not from the start."""
    from trainer.drive import DriveFolder

    synth = _dataset(tmp_path)
    bad = _image_of_step(synth, 3)
    good = _damage(bad)
    cfg = load_config(_config(tmp_path, synth, **{"drive.logs": "drive:runs/a"}))

    with pytest.raises(TrainingInterrupted) as stopped:
        fit(cfg, resume="none")

    assert re.match(r"stopped by an unreadable image at epoch 1, iteration 2: "
                    r"autosave_00000002\.pt is saved and verified on drive:runs/a \([\d.]+ s "
                    r"after the failed read\); resume with --resume auto \(cannot read image ",
                    str(stopped.value)), str(stopped.value)
    found = {c.name for c in DriveFolder("drive:runs/a", str(tmp_path / "x")).checkpoints()}
    assert "autosave_00000002.pt" in found
    Path(bad).write_bytes(good)
    shutil.rmtree(cfg.train.out_dir)   # (a new machine)
    result = fit(cfg, resume="auto")
    assert os.path.basename(result.resumed_from) == "autosave_00000002.pt"
