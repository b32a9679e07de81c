"""The tiniest training run the trainer's attack tests use (attacktrain40, attackstream40):
12 synthetic 64×96 images of 2 classes, width 0.25, one epoch a save and an evaluation, no
loader workers, deterministic on the CPU; its checkpoints sent to ``logs`` on Drive."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from trainer.data.synth import make_synthetic_voc


def tiny_run_config(tmp_path: Path, epochs: int = 1, *, logs: Optional[str] = "drive:runs/a",
                    out_dir: Optional[Path] = None, **train: Any) -> str:
    """A config file for that run in ``tmp_path`` (the data made there once); ``logs`` None:
    no Drive; ``train`` overrides the train section (each such config a file of its own)."""
    data = tmp_path / "data"
    if not data.exists():
        make_synthetic_voc(data, images=12, classes=2, seed=0, image_size=(64, 96))
    cfg: dict[str, Any] = {
        "data": {"classes": str(data / "classes.txt"), "train": str(data / "2007_train.txt"),
                 "val": str(data / "2007_val.txt"), "workers": 0, "root": str(data)},
        "model": {"input_size": 64, "width": 0.25},
        "train": {"epochs": epochs, "freeze_epochs": 0, "batch_size": 4,
                  "freeze_batch_size": 4, "save_period": 1, "eval_period": 1,
                  "out_dir": str(out_dir or tmp_path / "logs"), "deterministic": True,
                  "device": "cpu", "mosaic": False, "mixup": False, **train}}
    if logs is not None:
        cfg["drive"] = {"logs": logs, "lease_minutes": 0}
    name = f"c{epochs}-{len(list(tmp_path.glob('c*.yaml')))}.yaml" if train else \
        f"c{epochs}.yaml"
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def warnings_said(caplog) -> list:
    """The WARNING-or-worse records of a tiny run, less the one line a loaded machine adds:
    the run's TensorBoard events file written to while a push sent it ("… changed while it
    was uploaded; uploading it again": the resend is right, its timing the machine's; two
    tests that assert every warning failed on it in a fresh-clone CI run)."""
    import logging

    return [r for r in caplog.records if r.levelno >= logging.WARNING and not (
        r.name == "drivestage.drive.upload" and "/tensorboard/" in r.getMessage()
        and r.getMessage().endswith("changed while it was uploaded; uploading it again"))]
