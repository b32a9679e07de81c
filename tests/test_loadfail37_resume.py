"""loadfail37: ``--resume auto`` past a verified checkpoint that does not load on this machine
(not the file's fault) went on from an older checkpoint; the run's saves then replaced the
newer verified one here (``epoch_002.pt``, ``last.pt``) and on Drive. Now the run stops
before a step, one line naming the file, the error and what to do, exit 1, and nothing here
or on Drive is replaced or pruned: from the local run folder (the CLI), from Drive on a
machine that has none of it (the CLI, the copy fetched removed), and under torchrun (2 gloo
ranks, ``engine.fit``: rank 0 decides, every rank raises the same error, exit 1).

A real run's checkpoints (two epochs of the trainer on a synthetic dataset); the load fails
in torch itself: ``TRAINER_TEST_LOAD_ON`` (tests only) loads the files it names onto a
device this machine lacks, as a GPU lost or out of memory fails a load. It names every
checkpoint but epoch_001.pt's, so that the old fallback had one to go back to."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from test_trainer22_hostile import _md5s
from trainer import checkpoint as ckpt

#: Every checkpoint but epoch_001.pt (and a copy fetched under a temporary name).
ALL_BUT_THE_FIRST = "*[!1].pt*=cuda:100"
SO = ("so the run stops rather than go on from an older checkpoint, whose saves would replace "
      "or prune this one")
AGAIN = "then run the same command again; or go on from an older checkpoint on purpose with"


@pytest.fixture(scope="module")
def trained(synth_voc, tmp_path_factory):
    """A run folder with two epochs trained (epoch_001.pt, epoch_002.pt, last.pt, best.pt and
    their sidecars), made once for the module: copied by each test."""
    from trainer.config import load_config
    from trainer.engine import fit

    where = tmp_path_factory.mktemp("loadfail37")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(load_config(_config(where, synth_voc)), resume="none")
    finally:
        torch.set_num_threads(threads)
    assert {"epoch_001.pt", "epoch_002.pt", "last.pt"} <= set(os.listdir(where / "logs"))
    return where / "logs"


def _config(where: Path, synth, **overrides) -> str:
    cfg = {"data": {"classes": str(synth.classes_file), "train": str(synth.train_lines_file),
                    "val": str(synth.val_lines_file), "workers": 0, "max_val_images": 2},
           "model": {"input_size": 64, "width": 0.25},
           "train": {"epochs": 2, "freeze_epochs": 0, "batch_size": 8, "freeze_batch_size": 8,
                     "save_period": 1, "eval_period": 1, "out_dir": str(where / "logs"),
                     "deterministic": True, "device": "cpu", "mosaic": False, "mixup": False}}
    for key, value in overrides.items():
        section, name = key.split(".")
        cfg.setdefault(section, {})[name] = value
    path = where / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _torch_says(path: Path) -> str:
    """What torch says loading ``path`` onto the device this module names."""
    try:
        torch.load(path, map_location=ALL_BUT_THE_FIRST.split("=")[1], weights_only=True)
    except RuntimeError as exc:
        return str(exc).strip().splitlines()[0]
    raise AssertionError(f"{path} loaded")


def _line(where: str, path: Path, more: str = "", older: str = "--resume PATH") -> str:
    """The stop's line for ``where`` (whose bytes are ``path``'s)."""
    md5 = ckpt.read_sidecar(str(path)).md5
    return (f"cannot resume from {where}: loading it failed on this machine (RuntimeError: "
            f"{_torch_says(path)}), although its bytes are those its sidecar vouches for (md5 "
            f"{md5}): not damaged, {SO}{more}. Free memory, check the disk and the file's "
            f"permissions, or use a newer torch (this is {torch.__version__}), {AGAIN} {older}")


def _train(config: str, *more: str):
    from trainer.cli import cli

    result = CliRunner().invoke(cli, ["train", "-c", config, "--resume", "auto", "--set",
                                      "train.epochs=3", *more])
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    return result.exit_code, errors, result.stderr


def test_the_local_newest_that_does_not_load_here_stops_the_run(
        trained, synth_voc, tmp_path, monkeypatch, one_torch_thread):
    """Before: epoch_002.pt, last.pt and best.pt skipped as "truncated or not a trainer
    checkpoint", the run went on from epoch_001.pt and its save of epoch 2 replaced them."""
    logs = tmp_path / "logs"
    shutil.copytree(trained, logs)
    before, names = _md5s(logs), sorted(os.listdir(logs))
    monkeypatch.setenv("TRAINER_TEST_LOAD_ON", ALL_BUT_THE_FIRST)

    code, errors, err = _train(_config(tmp_path, synth_voc))

    assert code == 1, err
    assert errors == [f"Error: {_line(str(logs / 'epoch_002.pt'), logs / 'epoch_002.pt')}"], err
    assert _md5s(logs) == before
    assert sorted(n for n in os.listdir(logs) if not n.startswith(".")) == names


def test_the_newest_on_drive_that_does_not_load_here_stops_the_run(
        trained, synth_voc, tmp_path, monkeypatch, emulator, drive_env, local_state,
        fast_retries, one_torch_thread):
    """A machine with none of the run: Drive holds it (pushed from the run folder). Before,
    the fallback fetched epoch_001.pt, trained epoch 2 again and pushed it over Drive's
    epoch_002.pt. Now: one line naming the Drive file; the copy fetched is removed; Drive's
    checkpoints and sidecars are as they were."""
    from test_trainer23_fallback import _drive_listing
    from trainer.drive import DriveFolder

    there = tmp_path / "there"
    shutil.copytree(trained, there)
    DriveFolder("drive:Models/logs", str(there)).push()
    on_drive = [f for f in _drive_listing(emulator) if f[0].endswith((".pt", ".json"))]
    assert ("epoch_002.pt", _md5s(there)["epoch_002.pt"]) in on_drive
    monkeypatch.setenv("TRAINER_TEST_LOAD_ON", ALL_BUT_THE_FIRST)

    code, errors, err = _train(_config(tmp_path, synth_voc), "--set",
                               "drive.logs=drive:Models/logs")

    assert code == 1, err
    line = _line("drive:Models/logs/epoch_002.pt", there / "epoch_002.pt",
                 "; the copy fetched here is removed, Drive keeps it",
                 "--resume PATH (drivestage pull one from drive.logs first)")
    assert errors == [f"Error: {line}"], err
    assert [f for f in _drive_listing(emulator) if f[0].endswith((".pt", ".json"))] == on_drive
    here = tmp_path / "logs"
    assert not [n for n in os.listdir(here) if n.endswith((".pt", ".tmp"))], os.listdir(here)


def _rank(rank: int, port: int, config: str, out: str) -> None:
    from trainer.config import load_config
    from trainer.engine import fit

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        fit(load_config(config), resume="auto")
        said = "trained"
    except Exception as exc:
        said = f"{type(exc).__name__} {getattr(exc, 'exit_code', '-')} {exc}"
    Path(out, f"rank{rank}.txt").write_text(said)


def test_under_torchrun_every_rank_stops_with_rank_0s_line(
        trained, synth_voc, tmp_path, monkeypatch):
    """Rank 0 decides: it stops on epoch_002.pt; rank 1 raises the same error type with rank
    0's line (neither waits for the other in a collective), exit 1 each; nothing replaced."""
    import torch.multiprocessing as mp

    from _ports import free_port

    logs = tmp_path / "logs"
    shutil.copytree(trained, logs)
    before = _md5s(logs)
    config = _config(tmp_path, synth_voc, **{"train.epochs": 3})
    monkeypatch.setenv("TRAINER_TEST_LOAD_ON", ALL_BUT_THE_FIRST)

    mp.start_processes(_rank, args=(free_port(), config, str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")

    line = _line(str(logs / "epoch_002.pt"), logs / "epoch_002.pt")
    assert [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)] == [
        f"LoadFailedError 1 {line}",
        f"LoadFailedError 1 rank 0 could not choose where to start: {line}"]
    assert _md5s(logs) == before
