"""CLI commands ``train`` and ``eval`` (registered on the trainer group)."""
from __future__ import annotations

import functools
import json
import logging
import os
from typing import Any

import click

from trainer.cli import cli


def stops_as_ctrl_c(fn: Any) -> Any:
    """The command ends on SIGTERM or SIGHUP (left at their default) as on a Ctrl-C
    (:func:`drivestage.stop_signals.as_ctrl_c`: ``Interrupted by SIGTERM.``, 143; 129): its
    clean-ups run. ``status`` killed by them left its temporary folder, a checkpoint's bytes
    fetched to look inside, in TMPDIR at each run a ``timeout`` or a closed terminal ended
    (attack45). Not ``train``: its own handlers save a checkpoint first."""
    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        from drivestage.stop_signals import as_ctrl_c
        from trainer import cli as group

        # (The whole process: a repeat, a supervisor's second SIGTERM, is ignored as it
        # says its line; put back at its default, it killed it there, the line unsaid.)
        with as_ctrl_c(program=group._AS_PROGRAM):
            return fn(*args, **kwargs)
    return command


logger = logging.getLogger(__name__)

TRAIN_EPILOG = """\b
Examples:
  trainer train --config configs/voc.yaml
  trainer train -c configs/demo.yaml --set train.epochs=5 --set data.workers=0
  trainer train -c configs/voc.yaml --resume none --set train.out_dir=logs-2 \\
      --set drive.logs=drive:Models/yolov4-tiny/logs-2    # start over, in new folders
  torchrun --nproc_per_node=2 -m trainer train -c configs/voc.yaml

\b
--resume auto (the default) continues from the newest checkpoint in train.out_dir or, when
that folder is empty (a fresh runtime), from the newest one on drive.logs, at the iteration
it was saved at. --resume none starts a new run and refuses folders that hold another run.
SIGTERM, Ctrl-C or a hang-up (SIGHUP; not under nohup) saves a checkpoint, uploads it within
train.grace_seconds and stops. Exit codes: 0 done, 1 error, 2 bad config or usage, 143
stopped by SIGTERM, 130 by SIGINT, 129 by SIGHUP.
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
@click.option("--take-over", is_flag=True,
              help="Take the run's lease on drive.logs from a trainer that still renews it "
                   "(it stops at its next save): drive.take_over.")
def train(config_path: str, overrides: tuple[str, ...], resume: str, take_over: bool) -> None:
    """Train YOLOv4-tiny; checkpoints are mirrored to drive.logs and resumed automatically."""
    from trainer.config import load_config
    from trainer.engine import fit

    _quiet_other_ranks()
    _refuse_a_drive_resume(resume)
    _refuse_a_missing_resume(resume)
    cfg = load_config(config_path, list(overrides) + (["drive.take_over=true"] if take_over
                                                      else []))
    _refuse_a_file_as_out_dir(cfg.train.out_dir)
    if cfg.drive.logs and cfg.drive.lease_minutes:
        from trainer.lease_claims import settle_seconds

        settle_seconds(0.0)   # (a bad TRAINER_LEASE_SETTLE: before the data is staged)
    _refuse_the_dataset_in_the_run_folder(cfg)
    _refuse_a_mirror_in_the_run_folder(cfg)
    from trainer.resume_checks import refuse_folders

    refuse_folders(cfg.train.out_dir)   # a folder where a save goes: said before the data is pulled
    from trainer.start_weights import check_start_weights

    check_start_weights(cfg, resume)   # not there: said before the data is pulled (not resuming)
    _make_the_run_folder(cfg.train.out_dir)
    result = fit(cfg, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    # Its reader gone (`trainer train … | head -1`, a tee that ended), the summary is
    # dropped and the run's work stays done: exit 0 (drivestage.stdout_sink, attackstream40).
    _summary(cfg, result)


def _summary(cfg: Any, result: Any) -> None:
    """The lines a finished run prints on standard output."""
    final = result.final or {}
    if final.get("map50") is not None:
        coco = "n/a" if final.get("map") is None else f"{final['map']:.4f}"
        # (A finished run started again recorded no image count: was "? images".)
        images = f", {final['images']} images" if final.get("images") is not None else ""
        click.echo(f"final mAP@0.5 = {final['map50']:.4f}  mAP@0.5:0.95 = {coco}  "
                   f"(val set{images})")
    if result.best_map50 is not None:
        click.echo(f"best mAP@0.5 = {result.best_map50:.4f} at epoch {result.best_epoch}")
    if result.last_checkpoint:
        # fit() returns only once the final push to drive.logs is verified (it raises
        # otherwise): say so, as that is what makes closing the runtime safe.
        on_drive = f" and on {cfg.drive.logs} (every upload verified)" if cfg.drive.logs else ""
        # (Verified there, the rest of the final push failed: what is safe, what failed.)
        click.echo(result.drive_note or f"checkpoints in {result.out_dir}{on_drive}")


def _refuse_a_drive_resume(resume: str) -> None:
    """``--resume drive:...`` was taken for a local path and refused as "no such file", as
    if the Drive path were wrong: say what resumes from Drive instead."""
    from drivestage import paths
    from trainer.errors import ConfigError

    if not paths.is_drive(resume):
        return
    try:
        name = paths.parse(resume).name or "<name>"
    except ValueError:  # a malformed drive: path or link
        name = "<name>"
    raise ConfigError(f"--resume {resume}: --resume takes a local checkpoint, not a path on "
                      "Drive: with drive.logs set to its folder, --resume auto continues from "
                      "the newest checkpoint verified there (or pull it first: drivestage pull "
                      f"{resume} ./weights, then --resume weights/{name})")


def _refuse_a_file_as_out_dir(out_dir: str) -> None:
    """``train.out_dir`` that is a file, or lies under one (``configs/demo.yaml``): one line
    naming the file, where the run folder's making ended in a traceback."""
    from trainer.errors import ConfigError

    here = os.path.abspath(os.path.expanduser(out_dir))
    while not os.path.lexists(here) and os.path.dirname(here) != here:
        here = os.path.dirname(here)
    if not os.path.isdir(here):
        raise ConfigError(f"train.out_dir {out_dir} cannot be made: {here} is a file, not a "
                          "folder; set train.out_dir to a folder")


def _make_the_run_folder(out_dir: str) -> None:
    """Make ``train.out_dir`` as :func:`trainer.engine.fit` does, once every refusal above
    passed (a refused run makes nothing): where no folder can be made (a read-only disk,
    another user's folder), one line naming the setting, where fit's ``os.makedirs`` ended
    in a traceback (attackcli39)."""
    from trainer.errors import ConfigError

    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ConfigError(f"train.out_dir {out_dir} cannot be made: {exc.strerror or exc}"
                          f"{where}; set train.out_dir to a folder you can write") from None


def _refuse_the_dataset_in_the_run_folder(cfg: Any) -> None:
    """``train.out_dir`` that is or holds ``data.root`` (or ``data.voc_root``) with
    ``drive.logs`` set: the run folder is mirrored whole, and its first push uploaded the
    dataset (gigabytes of VOC images, the archive kept beside them) with the checkpoints."""
    from trainer.errors import ConfigError

    if not cfg.drive.logs:
        return
    out = os.path.realpath(os.path.expanduser(cfg.train.out_dir))
    for key, given in (("data.root", cfg.data.root), ("data.voc_root", cfg.data.voc_root)):
        if not given:
            continue
        path = os.path.realpath(os.path.expanduser(given))
        if os.path.commonpath([out, path]) != out:
            continue
        held = f"is {key}" if path == out else f"holds {key} {given}"
        raise ConfigError(
            f"train.out_dir {cfg.train.out_dir} {held} (the dataset): the run folder is "
            f"mirrored to drive.logs whole, and the dataset would be uploaded with the "
            f"checkpoints; give train.out_dir a folder of its own (e.g. --set "
            f"train.out_dir={os.path.join(os.path.dirname(path), 'logs')})")


def _refuse_a_mirror_in_the_run_folder(cfg: Any) -> None:
    """A local ``drive.logs`` (a NAS, a second disk) that overlaps ``train.out_dir``: inside
    it, every push copied the run folder into itself, one level deeper each time, until the
    disk was full; the run folder itself (or above it), the mirror was no second copy, and
    its retention pruned the run folder's epoch files."""
    from drivestage import paths
    from trainer.errors import ConfigError

    if not cfg.drive.logs or paths.is_drive(cfg.drive.logs):
        return
    out = os.path.realpath(os.path.expanduser(cfg.train.out_dir))
    logs = os.path.realpath(os.path.expanduser(cfg.drive.logs))
    named = f"drive.logs {cfg.drive.logs}"
    if logs != out and os.path.commonpath([out, logs]) == out:
        raise ConfigError(f"{named} is inside train.out_dir {cfg.train.out_dir}: the run folder "
                          "would be mirrored into itself, one level deeper at every push (its "
                          "files copied again each time, until the disk is full); give "
                          "drive.logs a folder outside train.out_dir")
    if os.path.commonpath([out, logs]) == logs:
        what = "is train.out_dir" if logs == out else f"holds train.out_dir {cfg.train.out_dir}"
        raise ConfigError(f"{named} {what}: the mirror would be no second copy of the run; "
                          "give drive.logs a folder of its own, outside train.out_dir (or a "
                          "Drive folder, drive:…)")


def _refuse_a_missing_resume(resume: str) -> None:
    """``--resume PATH`` that is not there, said before the dataset is pulled (minutes on a
    fresh runtime, where such a path most often is missing): a bad path, exit 2. Only where
    every rank runs on this machine: under multi-machine DDP the other machines need not
    hold the file (they fetch rank 0's bytes; trainer.resume), and rank 0 says it later."""
    from trainer.errors import ConfigError
    from trainer.resume import NO_RESUME

    if not resume.strip():   # ("$CKPT" unset: read as none, a new run, not the one named)
        raise ConfigError("--resume is empty (an unset variable?); give auto, none or a "
                          "checkpoint's path")
    if resume.strip().lower() in (*NO_RESUME, "auto") or os.path.isfile(resume):
        return
    if os.path.isdir(resume):   # (the run folder: "no such file", attackcli40)
        raise ConfigError(f"--resume {resume} is a folder; give a checkpoint in it (e.g. "
                          f"{os.path.join(resume, 'last.pt')}), or --resume auto for the newest "
                          "in train.out_dir")
    if os.environ.get("WORLD_SIZE", "1") != os.environ.get("LOCAL_WORLD_SIZE", "1"):
        return
    raise ConfigError(f"--resume {resume}: no such file; use --resume auto or a checkpoint "
                      "path")


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
    from trainer.engine import evaluate
    from trainer.errors import WeightsError
    from trainer.model import YoloV4Tiny
    from trainer.staging import local_weights, stage_data
    from trainer.weights import load_weights

    cfg = load_config(config_path, list(overrides))
    from drivestage import paths

    if paths.is_link(weights):   # (a sharing link, as pull takes it: was "file not found")
        weights = str(paths.parse_link(weights))
    if not weights.startswith("drive:"):
        local_weights(weights, cfg, "--weights")  # not there: said before the data is pulled
    data = stage_data(cfg, weights=(weights,))   # (its older copy out of the tree first)
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu")
    path = local_weights(weights, cfg, "--weights")  # the option typed, not model.weights
    info = _check_classes(path, data.class_names)
    try:
        model = YoloV4Tiny(len(data.class_names), **_as_trained(path, info, cfg.model))
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        # What the checkpoint recorded of its model is not one (a damaged or foreign file).
        raise WeightsError(f"{path} records a model that cannot be built ({exc}); evaluate "
                           "trained weights of this trainer") from None
    report = load_weights(model, path)
    if report.skipped or any(k.startswith("yolo_head") for k in report.missing):
        # Scored anyway, its random heads gave an mAP near 0 and exit 0.
        raise WeightsError(f"{path}: the detection heads did not load ({report.summary()}); "
                           "evaluate with the config it was trained with")
    lines = data.val_lines[: cfg.data.max_val_images] if cfg.data.max_val_images else data.val_lines
    try:
        result = evaluate(model.to(device),
                          EvalDataset(lines, cfg.model.input_size, classes=data.class_names),
                          data.class_names, device, conf_thresh=cfg.train.conf_thresh,
                          nms_thresh=cfg.train.nms_thresh, workers=cfg.data.workers)
    except (RuntimeError, MemoryError) as exc:
        from trainer.errors import TrainerError
        from trainer.worker_deaths import unguarded_line

        # (The OOM killer's SIGKILL of a worker, a worker's MemoryError: torch's traceback.)
        line = unguarded_line(exc, "the validation images")
        if line is None:
            raise
        raise TrainerError(line) from None
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


def _check_classes(path: str, names: list) -> dict:
    """Refuse weights trained for other classes (their per-class AP would be meaningless) or
    for none (a backbone: its heads would be random); what the file says of its model."""
    from trainer.errors import WeightsError
    from trainer.weights import inspect_weights

    info = inspect_weights(path)
    saved, count = info.get("classes"), info.get("num_classes")
    if count is None:
        raise WeightsError(f"{path} has no detection heads (a backbone-only file?); evaluating "
                           "needs trained weights")
    if saved is not None and list(saved) != list(names):
        raise WeightsError(f"{path} was trained on {len(saved)} classes {_names(saved)} "
                           f"but the config names {len(names)} classes {_names(names)}; evaluate "
                           f"with the config it was trained with (data.classes)")
    if saved is None and count != len(names):
        raise WeightsError(f"{path} has heads for {count} classes (names not stored) "
                           f"but the config names {len(names)} classes {_names(names)}; evaluate "
                           f"with the config it was trained with (data.classes)")
    return info


def _as_trained(path: str, info: dict, model_cfg: Any) -> dict:
    """The model's shape as ``path`` was trained (what its checkpoint recorded, else the
    config's), with a warning for each way it differs from the config: the weights are
    scored as they were trained, not through anchors or attention they never learnt with."""
    shape = {"anchors": model_cfg.anchors, "anchors_mask": model_cfg.anchors_mask,
             "phi": model_cfg.phi, "width": model_cfg.width}
    info = {"width": 1.0, **info}   # (a file that does not say, and whose shapes do not: 1)
    differs = [k for k in shape if k in info and json.dumps(info[k]) != json.dumps(shape[k])]
    shape.update((k, info[k]) for k in differs)
    name = os.path.basename(path)
    if differs:
        logger.warning("%s was trained with another %s than the config's: evaluated as trained",
                       name, " and ".join(f"model.{k}" for k in differs))
    trained = info.get("input_size")
    if trained and int(trained) != model_cfg.input_size:
        logger.warning("evaluated at input size %d (model.input_size); %s was trained at %d: "
                       "--set model.input_size=%d evaluates it as trained",
                       model_cfg.input_size, name, trained, trained)
    return dict(shape, input_size=model_cfg.input_size)


def _names(names: list) -> str:
    return "[" + ", ".join(str(n) for n in names) + "]"


@cli.command("status", epilog="""\b
Examples:
  trainer status --config configs/voc.yaml
  trainer status -c configs/voc.yaml --set drive.logs=drive:Models/yolov4-tiny/logs --json
""")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="YAML config naming drive.logs.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key.")
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON on stdout.")
@stops_as_ctrl_c
def status_cmd(config_path: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """What is safe on Drive: the newest checkpoint verified on drive.logs, its age, epoch and
    iteration (of the run written last there). When that is no state to train on (NaN
    weights, or weights that do not fit the config's network), one line names it and why,
    and one the checkpoint --resume auto goes on from; where the config changes the model's
    shape (class count, anchors mask, phi, model.width), one line says --resume auto would
    refuse it; so does one where train.out_dir holds another program's file under a name the
    run's saves write (train refuses it first). A line names the trainer holding the run's
    lease (drive.lease_minutes), or the one that held it last and that it is stale (--json:
    lease, with its generation and the seconds since its last renewal). A last line says how
    many epoch files train.out_dir keeps on this machine (train.keep_local).

    Exit codes: 0 there is one, 1 there is none (or Drive cannot be read), 2 bad config;
    143 stopped by SIGTERM, 129 by SIGHUP, 130 by Ctrl-C.
    """
    import time

    from trainer.config import load_config
    from trainer.drive import DriveFolder, age_text, newest_of_current_run
    from trainer.errors import CheckpointError, ConfigError
    from trainer.state import Position, describe_run

    cfg = load_config(config_path, list(overrides))
    if not cfg.drive.logs:
        raise ConfigError(f"drive.logs is not set in {config_path}; trainer status reports the "
                          f"checkpoints on it (--set drive.logs=drive:...)")
    folder = DriveFolder(cfg.drive.logs, cfg.train.out_dir)
    remote = folder.checkpoints()
    found = newest_of_current_run(remote)
    from trainer.status import foreign_refusal

    # (train refuses it before it looks at Drive: Drive's verdict is not what it does.)
    foreign = foreign_refusal(cfg.train.out_dir)
    if found is None:
        # A typo in drive.logs read as "not yet": the user waits for saves that go elsewhere.
        gone = folder.missing()
        if gone is not None and gone.endswith(" is a file, not a folder"):
            # (Not "a run makes it at its first save": a run's push is refused there.)
            raise CheckpointError(f"drive.logs {gone}; drive.logs names the run's folder "
                                  "(where its checkpoints go)")
        if gone is not None:
            # (The lookup names the first part missing: say which drive.logs that was in.)
            where = gone if gone.startswith(folder.spec + " ") else f"{folder.spec}: {gone}"
            # ("check drive.logs" alone read like a typo while a run was starting.)
            raise CheckpointError(f"drive.logs {where}; no run has saved there yet: a run "
                                  "makes it at its first save, or drive.logs names the wrong "
                                  "folder")
        from trainer.status import lease, lease_line

        held = lease(folder, cfg.drive.lease_minutes)   # (a run started, nothing saved yet)
        now_by = "" if held is None else \
            " (" + lease_line(folder.spec, held).split(": ", 1)[1] + ")"
        # (A save killed between its two uploads: what a resume goes on from, trainer.drive_lone.)
        from trainer.status import lone_line

        lone = f"; --resume auto would refuse: {foreign}" if foreign is not None else \
            lone_line(folder, cfg.train.out_dir)
        raise CheckpointError(f"no verified checkpoint on {folder.spec} yet{now_by}{lone}")
    side = found.sidecar
    pos = Position(side.epoch or 0, side.iteration or 0, side.epoch_iteration)
    # (By Drive's clock, as its answers' Date says it: Drive's modifiedDate against this
    # machine's clock read "0 s ago" for a state two hours old where it runs two hours
    # behind: attack48; by this machine's where Drive's own date shows that Date wrong, and
    # said uncertain where neither is shown wrong: trainer.status_age, clock49.)
    from drivestage.drive import server_clock
    from trainer.status_age import verified_age

    now = server_clock.drive_clock() or time.time()
    aged = verified_age(found.described.modified)
    age = aged.seconds
    # Safe on Drive is not a state to train on (NaN weights: a run that had diverged): what
    # --resume auto from Drive goes on from, each checkpoint it passes over named with why.
    from trainer.status import resume_verdict, verdict_lines

    from trainer.local_retention import epoch_files
    from trainer.drive import unvouched_why
    from trainer.status import Verdict, config_check, layout_check, local_line, no_start

    verdict = Verdict(refused=foreign) if foreign is not None else \
        resume_verdict(folder, remote, cfg.train.out_dir, layout=layout_check(cfg),
                       config=config_check(cfg))
    from trainer.status import lease, lease_line

    held = lease(folder, cfg.drive.lease_minutes)   # (a trainer running now: trainer.lease)
    here = sorted(epoch_files(cfg.train.out_dir).items(), key=lambda kv: (kv[1], kv[0]))
    if as_json:
        click.echo(json.dumps({"where": found.where, "name": found.name, "run": side.run,
                               "epoch": side.epoch, "iteration": side.iteration,
                               "epoch_iteration": side.epoch_iteration,
                               "metrics": dict(side.metrics), "verified_at": found.described.modified,
                               "age_s": round(age, 1), "size": found.entry.size,
                               "age_range_s": None if aged.note is None else
                               [round(aged.low, 1), round(aged.high, 1)],
                               "age_note": aged.note,
                               "md5": found.entry.md5,
                               "resume_from": verdict.start.where if verdict.start else None,
                               "passed_over": [
                                   *({"where": c.where, "why": unvouched_why(c)}
                                     for c in verdict.unvouched),
                                   *({"where": w, "why": "no sidecar on Drive"}
                                     for w in verdict.lone),
                                   *({"where": c.where, "why": why}
                                     for c, why in verdict.passed_over)],
                               "resume_unknown": verdict.unknown,
                               "resume_refused": verdict.refused or no_start(verdict,
                                                                             folder.spec),
                               "local_epoch_files": [name for name, _ in here],
                               "keep_local": cfg.train.keep_local, "lease": held},
                              indent=1, sort_keys=True))
        return
    from drivestage.paths import printable

    # (Escaped as the lines below are: a sidecar on Drive, its run id included, is anybody's
    # text in a shared folder; an ANSI escape or a newline in it reached the terminal.)
    click.echo(printable(f"{found.where}: {pos.label}, verified on Drive {age_text(age)} ago "
                         f"({describe_run(side.run)})"))
    if aged.note is not None:
        click.echo(printable(f"{found.where}: {aged.note}"))
    if held is not None:
        click.echo(printable(lease_line(folder.spec, held)))

    lines = verdict_lines(verdict, folder.spec, now)
    mine = local_line(cfg.train.out_dir, cfg.train.keep_local)   # (train.keep_local)
    if mine is not None:
        # A refusal of --resume auto stays the last line, what `| tail -1` or a notebook's
        # end shows: the run folder's line came after it on the training machine (lefts52).
        refuses = verdict.unknown is None and (verdict.refused is not None
                                               or no_start(verdict, folder.spec) is not None)
        lines.insert(len(lines) - 1 if refuses and lines else len(lines), mine)
    for line in lines:
        click.echo(printable(line))
