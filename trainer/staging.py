"""The data and weights a run starts from: staged from Drive once per machine, then read.

``stage_data`` pulls ``data.drive_zip`` (rank 0 of each machine first, the others find it
staged), finds the VOCdevkit, reads the class names and the annotation lines of both splits.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

from trainer import derived, distributed
from trainer.config import Config
from trainer.errors import ConfigError, DataError

logger = logging.getLogger(__name__)




@dataclass
class DataSpec:
    """What :func:`stage_data` found: class names and annotation lines."""

    class_names: list[str]
    train_lines: list[str]
    val_lines: list[str]
    voc_root: Optional[str] = None


def stage_data(cfg: Config, info: distributed.DistInfo = distributed.DistInfo(),
               weights: Sequence[str] = ()) -> DataSpec:
    """Pull ``data.drive_zip`` (once per machine), find the VOCdevkit, read classes and lines.
    ``weights``: what the caller pulls next besides ``model.weights`` (eval's
    ``--weights``): an older version's copy of it leaves the dataset's tree first."""
    d = cfg.data
    if d.root.startswith("drive:"):   # (the pull said "DEST …", a word no config has)
        raise ConfigError(f"data.root {d.root} is a path on Google Drive; data.root is the "
                          "folder on this machine the dataset is staged into (e.g. ./data), "
                          "and data.drive_zip the archive on Drive to stage")
    with distributed.main_first(info) as first:
        if first:
            _retire_old_lines(cfg)
            # Before the pull, which a new version of the archive bringing their path
            # refused: see local_weights.
            derived.move_old_weights(d.root, [w for w in (cfg.model.weights, *weights)
                                              if w and w.startswith("drive:")])
        if d.drive_zip and first:
            import drivestage

            logger.info("staging %s into %s", d.drive_zip, d.root)
            with _naming("data.drive_zip"), _own_files(cfg), _an_archive():
                drivestage.pull(d.drive_zip, d.root, extract=True,
                                remove_archive=not d.keep_archive)
        spec = _read_data(cfg, write=first)
    return spec


def _voc_and_names(cfg: Config) -> tuple[Optional[str], list[str]]:
    """The VOCdevkit folder (None where there is none) and the class names."""
    from trainer.data.devkit import find_voc_root
    from trainer.data.voc import read_classes

    d = cfg.data
    voc_root = None
    if d.voc_root:
        voc_root = str(find_voc_root(d.voc_root, d.year))
    else:
        found = _search_voc(d.root, d.year)
        voc_root = str(found) if found else None
    classes = d.classes
    if isinstance(classes, str) and not os.path.isfile(classes) and voc_root:
        # A classes file named relative to the dataset (e.g. inside the zip).
        for cand in (Path(voc_root) / classes, Path(voc_root).parent / classes):
            if cand.is_file():
                classes = str(cand)
                break
    try:
        return voc_root, read_classes(classes)
    except (OSError, DataError) as exc:
        raise DataError(f"data.classes: {exc}") from None


def _read_data(cfg: Config, *, write: bool) -> DataSpec:
    from trainer.data.voc import read_annotation_file

    d = cfg.data
    voc_root, names = _voc_and_names(cfg)
    lines = {}
    for key in ("train", "val"):
        value = getattr(d, key)
        if os.path.isfile(value):
            lines[key] = read_annotation_file(value)
            continue
        if voc_root is None:
            other = _other_year(d.root)   # data.year=2012 over a VOC2007-only devkit
            where = (f"no VOCdevkit/VOC{d.year} was found under data.root={d.root!r} (it holds "
                     f"{other}: set data.year={other.name[3:]})" if other is not None else
                     f"no VOCdevkit was found under data.root={d.root!r} (set data.voc_root or "
                     "data.drive_zip)")
            raise DataError(f"data.{key}={value!r} is neither an annotation file nor a split of "
                            f"a VOCdevkit; {where}")
        split_file = Path(voc_root) / f"VOC{d.year}" / "ImageSets" / "Main" / f"{value}.txt"
        if not split_file.is_file():
            raise DataError(f"data.{key}={value!r}: no annotation file of that name and no split "
                            f"{split_file}; give an annotation file or a split name")
        ann_file = derived.lines_folder(d.root, voc_root, names) / f"{d.year}_{value}.txt"
        if write:
            _write_lines(cfg, voc_root, names, value)
            logger.info("%s: this machine's annotation lines in %s", value, ann_file)
        lines[key] = read_annotation_file(ann_file)
    _refuse_no_objects(cfg, names, lines["train"])
    return DataSpec(class_names=names, train_lines=lines["train"], val_lines=lines["val"],
                    voc_root=voc_root)


def _refuse_no_objects(cfg: Config, names: list[str], train: list[str]) -> None:
    """A training split without one object of the classes: a class list that matches none
    of the annotations' <name> tags (configs/voc.yaml's 20 VOC classes over another
    dataset) was a warning, then hours of training on images without a box (mAP 0: ux34)."""
    from trainer.data.voc import parse_annotation_line

    if any(len(parse_annotation_line(line)[1]) for line in train):
        return
    shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
    raise DataError(
        f"data.train {cfg.data.train}: none of its {len(train)} images holds an object of the "
        f"{len(names)} classes of data.classes ({shown}), so there is nothing to train on; "
        "list the classes the annotations' <name> tags use (a warning above names those "
        "left out)")


def _write_lines(cfg: Config, voc_root: str, names: list[str], split: str) -> Path:
    """The annotation lines of ``split`` written into the trainer's folder of data.root
    (:mod:`trainer.derived`: out of the dataset's tree); the file written."""
    from trainer.data.voc import prepare_voc

    d = cfg.data
    folder = derived.lines_folder(d.root, voc_root, names)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        prepare_voc(voc_root, 2, names, folder, year=d.year, image_sets=(split,))
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        # A dataset given read-only (Kaggle's /kaggle/input) as data.root: this was a
        # traceback, and the way out (data.voc_root there, data.root elsewhere) unsaid.
        raise DataError(
            f"data.root {d.root} cannot be written ({os.strerror(exc.errno).lower()}): "
            "the trainer writes its own files there (.drivestage-trainer/: the annotation "
            "lines, weights pulled from Drive; image-cache/ with data.cache=disk); to "
            "train from a read-only copy (Kaggle's /kaggle/input), set "
            f"data.voc_root={voc_root} and data.root to a folder you can write"
        ) from None
    return folder / f"{d.year}_{split}.txt"


def _retire_old_lines(cfg: Config) -> None:
    """Before the pull: the lines older versions wrote into data.root's tree, removed where
    they are exactly what the trainer writes now (:func:`trainer.derived.retire`), so a new
    version of the dataset archive bringing their path is not refused over the trainer's
    own file. Costs a stat or two where there are none."""
    d = cfg.data
    files = {os.path.realpath(v) for v in (d.train, d.val) if os.path.isfile(v)}
    splits = {f"{d.year}_{v}.txt": v for v in (d.train, d.val) if not os.path.isfile(v)}
    old = [p for p in derived.old_lines(d.root, sorted(splits))
           if os.path.realpath(p) not in files]  # (a file a setting names is the user's)
    if not old:
        return
    try:
        voc_root, names = _voc_and_names(cfg)
    except DataError:
        return  # said after the pull, if it still is so
    if voc_root is not None:
        found = voc_root
        derived.retire(d.root, old, lambda name: _write_lines(cfg, found, names, splits[name]))


def _other_year(root: str) -> Optional[Path]:
    """The first ``VOC<year>`` folder (with Annotations) under ``root``, of any year."""
    found = _search_voc(root, "[0-9][0-9][0-9][0-9]")
    years = sorted(found.glob("VOC[0-9][0-9][0-9][0-9]")) if found else []
    return next((c for c in years if (c / "Annotations").is_dir()), None)


def _search_voc(root: str, year: str) -> Optional[Path]:
    base = Path(root)
    if not base.is_dir():
        return None
    for depth in range(4):
        for cand in sorted(base.glob("/".join(["*"] * depth + [f"VOC{year}"]) if depth else f"VOC{year}")):
            if cand.is_dir() and (cand / "Annotations").is_dir():
                return cand.parent
    return None


def local_weights(spec: str, cfg: Config, key: str = "model.weights") -> str:
    """``drive:...`` weights are pulled next to the data; local paths are returned as they are.
    ``key`` is what the user set them with (``model.weights``, or ``--weights`` for eval),
    named in the errors: that is what to fix."""
    if spec == "":   # (`-w "$W"` unset: "--weights: file not found: " named nothing)
        raise ConfigError(f"{key} is empty (an unset variable?); give a weights file, or "
                          "drive:path to pull one from Drive")
    if not spec.startswith("drive:"):
        if os.path.isdir(spec):  # the run folder given for best.pt in it: "file not found"
            raise ConfigError(f"{key}: {spec} is a folder; give a weights file (e.g. best.pt "
                              "in it)")
        if not os.path.isfile(spec):
            from drivestage.localfs import UNMOUNTED_DRIVE, unmounted_drive_path

            # The old recipe's model_path on the mount: say which drive: path pulls it.
            unmounted = unmounted_drive_path(spec)
            if unmounted is not None:
                point, drive_spec = unmounted
                raise ConfigError(f"{key}: file not found: {spec} (it is under {point}, "
                                  f"{UNMOUNTED_DRIVE}); write {drive_spec} to pull it from Drive")
            from drivestage.paths import drive_hint

            hint = drive_hint(spec)   # (drive: forgotten: say how it is written, as pull does)
            raise ConfigError(f"{key}: file not found: {spec}" + (f"; {hint}" if hint else ""))
        return spec
    # Staged (md5-verified, cached) in the trainer's folder of data.root, out of the dataset's
    # tree (a new version of the dataset's archive bringing weights/<name> was refused over
    # them); a re-run finds it already there, and so does one whose older version pulled it
    # into data.root/weights/ (moved, with its stamp).
    derived.move_old_weights(cfg.data.root, [spec])
    return pull_weights(spec, str(derived.weights_folder(cfg.data.root)), key)


def pull_weights(spec: str, folder: str, key: str) -> str:
    """The weights file ``spec`` (``drive:...``) pulled into ``folder`` (md5-verified; a
    rerun finds it there). A Drive folder is refused before a byte is pulled: given the run
    folder instead of best.pt in it, the pull took every checkpoint in it, then no file was
    found."""
    import drivestage
    from drivestage.errors import AbusiveFileError, UsageError

    with _naming(key):
        try:
            try:
                return drivestage.pull(spec, folder, extract=False, quiet=True,
                                       folders=False).path
            except AbusiveFileError:
                return _pull_flagged(spec, folder, key)
        except UsageError as exc:
            raise UsageError(f"{key}: {exc}") from exc


def _pull_flagged(spec: str, folder: str, key: str) -> str:
    """``spec``, which Drive flagged as malware or spam (its scanner flags files it cannot
    tell, a pickle-based ``.pt`` among them), pulled acknowledging that: the pull's advice,
    ``pull again with --acknowledge-abuse``, named an option no trainer command has
    (``predict``/``export-onnx``/``eval --weights``, ``model.weights``: attackstream40).
    Safe to take, as for the run's own checkpoints (:func:`trainer.drive.fetch_own`):
    weights load as tensors only (:mod:`trainer.torch_files`; a Darknet file is raw
    floats), md5-checked. Drive honours it for the file's owner only; anyone else still
    gets its refusal, which says to ask the owner."""
    import drivestage
    from drivestage.remote import open_store

    logger.warning("Drive flagged %s (%s) as malware or spam; it is pulled acknowledging that "
                   "(acknowledgeAbuse, which Drive allows the file's owner): its bytes are "
                   "md5-checked and loaded as tensors only", spec, key)
    store = open_store(spec, acknowledge_abuse=True)[0]
    return drivestage.pull(spec, folder, extract=False, quiet=True, folders=False,
                           store=store).path


@contextlib.contextmanager
def _own_files(cfg: Config) -> Iterator[None]:
    """A pull that refused to replace files of ``data.root`` no extraction put there (the
    user's own), with advice a trainer user can take: the trainer has no ``--force``."""
    from drivestage.errors import UserFilesError

    try:
        yield
    except UserFilesError as exc:
        d = cfg.data
        them = "it" if exc.count == 1 else "them"
        # DEST as the trainer pulls: data.root, as drivestage reads it (a Drive folder of
        # archives lands in a folder of it, the refusal's DEST; that one as the command's DEST
        # nested it: attackclob32).
        root = os.path.abspath(os.path.expanduser(d.root))
        command = shlex.join(["drivestage", "pull", str(d.drive_zip), root, "-x", "--force"]
                             + ([] if d.keep_archive else ["--remove-archive"]))
        raise UserFilesError(exc.archive, exc.dest, exc.first, exc.count,
                             f"move {them} away, or replace {them} with `{command}`; then "
                             "start again", key="data.drive_zip", partly=exc.partly) from None


@contextlib.contextmanager
def _an_archive() -> Iterator[None]:
    """data.drive_zip naming a file that is no archive, said with the setting: the pull's
    advice (``pull it without --extract``) names an option the trainer does not have."""
    from drivestage.errors import NotAnArchiveError

    try:
        yield
    except NotAnArchiveError as exc:
        raise DataError(f"data.drive_zip: {exc.src} is not a zip or tar archive (downloaded "
                        f"to {exc.target}); set data.drive_zip to the dataset's archive (.zip, "
                        ".tar, .tar.gz/.tgz, .tar.bz2, .tar.xz), or leave it null and point "
                        "data.root at the extracted dataset") from None


@contextlib.contextmanager
def _naming(key: str) -> Iterator[None]:
    """A Drive path not found, named with the config key it came from: the path may be a
    default of the config file (configs/voc.yaml's weights), not something the user typed."""
    from drivestage.errors import NotFoundError

    try:
        yield
    except NotFoundError as exc:
        raise NotFoundError(f"{key}: {exc}") from exc
