"""CLI commands ``train`` and ``eval`` (registered on the trainer group)."""
from __future__ import annotations

import json
import logging
import os

import click

from trainer.cli import cli

logger = logging.getLogger(__name__)

TRAIN_EPILOG = """\b
Examples:
  trainer train --config configs/voc.yaml
  trainer train -c configs/demo.yaml --set train.epochs=5 --set data.workers=0
  trainer train -c configs/voc.yaml --resume none          # start over
  torchrun --nproc_per_node=2 -m trainer train -c configs/voc.yaml

\b
--resume auto (the default) continues from the newest checkpoint in train.out_dir or, when
that folder is empty (a fresh runtime), from the newest one on drive.logs.
Exit codes: 0 done, 1 error, 2 bad config or usage, 143 stopped by SIGTERM.
"""


def _quiet_other_ranks() -> None:
    # Rank 0 alone logs; the others only report problems.
    if int(os.environ.get("RANK", "0")) != 0:
        logging.getLogger("trainer").setLevel(logging.WARNING)


@cli.command("train", epilog=TRAIN_EPILOG)
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="YAML config (see configs/voc.yaml).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set train.epochs=10 (repeatable).")
@click.option("--resume", default="auto", show_default=True, metavar="auto|PATH|none",
              help="Where to resume from.")
def train(config_path: str, overrides: tuple[str, ...], resume: str) -> None:
    """Train YOLOv4-tiny; checkpoints are mirrored to drive.logs and resumed automatically."""
    from trainer.config import load_config
    from trainer.engine import fit

    _quiet_other_ranks()
    cfg = load_config(config_path, list(overrides))
    result = fit(cfg, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    final = result.final or {}
    if final.get("map50") is not None:
        coco = "n/a" if final.get("map") is None else f"{final['map']:.4f}"
        click.echo(f"final mAP@0.5 = {final['map50']:.4f}  mAP@0.5:0.95 = {coco}  "
                   f"(val set, {final.get('images', '?')} images)")
    if result.best_map50 is not None:
        click.echo(f"best mAP@0.5 = {result.best_map50:.4f} at epoch {result.best_epoch}")
    if result.last_checkpoint:
        click.echo(f"checkpoints in {result.out_dir}")


@cli.command("eval")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="YAML config naming the data and classes.")
@click.option("-w", "--weights", required=True,
              help="Weights to evaluate: a checkpoint (best.pt), a .pth, or drive:path.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
def evaluate_cmd(config_path: str, weights: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Per-class AP and mAP (VOC mAP@0.5, COCO mAP@0.5:0.95) on data.val."""
    import torch

    from trainer.config import load_config
    from trainer.data.dataset import EvalDataset
    from trainer.engine import _local_weights, evaluate, stage_data
    from trainer.model import YoloV4Tiny
    from trainer.weights import load_weights

    cfg = load_config(config_path, list(overrides))
    data = stage_data(cfg)
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu")
    model = YoloV4Tiny(len(data.class_names), cfg.model.anchors, cfg.model.anchors_mask,
                       input_size=cfg.model.input_size, phi=cfg.model.phi)
    load_weights(model, _local_weights(weights, cfg))
    lines = data.val_lines[: cfg.data.max_val_images] if cfg.data.max_val_images else data.val_lines
    result = evaluate(model.to(device), EvalDataset(lines, cfg.model.input_size, classes=data.class_names), data.class_names,
                      device, conf_thresh=cfg.train.conf_thresh, nms_thresh=cfg.train.nms_thresh,
                      workers=cfg.data.workers)
    if as_json:
        click.echo(json.dumps(result, indent=1, sort_keys=True))
        return
    width = max(12, *(len(n) for n in data.class_names))
    click.echo(f"{'class':<{width}}  AP@0.5")
    for name in data.class_names:
        ap = result["per_class"].get(name)
        click.echo(f"{name:<{width}}  {'n/a (no objects)' if ap is None else f'{ap:.4f}'}")
    click.echo(f"{'mAP@0.5':<{width}}  {result['map50']:.4f}")
    click.echo(f"{'mAP@0.5:0.95':<{width}}  {'n/a' if result['map'] is None else format(result['map'], '.4f')}")
    click.echo(f"({result['images']} images)")
