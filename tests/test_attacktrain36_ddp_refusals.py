"""attacktrain36: under torchrun (2 gloo ranks) a mid-epoch resume from another training list,
or with another train.seed, is refused by every rank in the same line: none waits in a
collective for one that left (the process group's timeout, 30 minutes)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from test_trainfault36_bad_image import _config, _damage, _dataset, _image_of_step
from test_trainfault36_dataset_change import _drop_line
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import CheckpointError, TrainingInterrupted


def _rank(rank: int, port: int, config: str, out: str, resume: str) -> None:
    import torch

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        fit(load_config(config), resume=resume)
    except (TrainingInterrupted, CheckpointError) as exc:
        Path(out, f"{resume}{rank}.txt").write_text(f"{exc.exit_code} {exc}")
    except Exception as exc:
        Path(out, f"error{rank}.txt").write_text(f"{type(exc).__name__}: {exc}")


def _both(tmp_path: Path, config: str, resume: str) -> list[str]:
    import torch.multiprocessing as mp

    from _ports import free_port

    mp.start_processes(_rank, args=(free_port(), config, str(tmp_path), resume), nprocs=2,
                       join=True, start_method="fork")
    assert not list(tmp_path.glob("error*.txt")), [p.read_text() for p in tmp_path.glob("error*")]
    return [(tmp_path / f"{resume}{r}.txt").read_text() for r in (0, 1)]


@pytest.mark.parametrize("change", ["list", "seed"])
def test_every_rank_refuses_a_mid_epoch_resume_from_another_order(tmp_path, change):
    synth = _dataset(tmp_path)
    bad = _image_of_step(synth, 2, replicas=2, rank=0)
    good = _damage(bad)
    more = {"train.batch_size": 8, "train.save_minutes": 0, "data.max_val_images": 1}
    config = _config(tmp_path, synth, **more)
    _both(tmp_path, config, "none")     # (rank 0 saves autosave_00000001.pt alone)
    assert (tmp_path / "logs" / "autosave_00000001.pt").is_file()
    Path(bad).write_bytes(good)
    if change == "list":
        _drop_line(synth.train_lines_file)
        why = "the training list (data.train) changed since it was saved (18 images then, 17 now)"
    else:
        cfg = yaml.safe_load(Path(config).read_text())
        cfg["train"]["seed"] = 12
        Path(config).write_text(yaml.safe_dump(cfg))
        why = "train.seed changed since it was saved (11 then, 12 now)"

    lines = _both(tmp_path, config, "auto")

    saved = tmp_path / "logs" / "autosave_00000001.pt"
    for line in lines:
        assert line.startswith(f"1 cannot resume from {saved} in the middle of epoch 1: {why}"), \
            lines
