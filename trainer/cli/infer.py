"""CLI commands ``predict`` and ``export-onnx`` (registered on the trainer group)."""
from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

import click

from drivestage.finite_range import FiniteRange
from trainer.cli import cli
from trainer.config_checks import INPUT_MAX, INPUT_MIN
from trainer.errors import DataError, TrainerError, WeightsError, refuse_empty

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@cli.command("predict", epilog="""\b
Examples:
  trainer predict --weights logs/best.pt --source data/test.jpg --out runs/predict
  trainer predict --weights yolov4_tiny_weights_voc.pth --classes voc_classes.txt \\
      --source images/ --out runs/predict --conf 0.25
""")
@click.option("--weights", "weights", required=True, callback=lambda c, p, v: _weights_arg(v),
              help="A .pth/.pt (port, our checkpoint) or Darknet .weights file; drive:path "
                   "pulls it (md5-verified) into OUT/weights first.")
@click.option("--source", required=True, type=click.Path(exists=True),
              help="An image, or a folder searched recursively for images.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the annotated images and detections.json.")
@click.option("--classes", "classes_file", type=click.Path(exists=True, dir_okay=False),
              help="Class names, one per line (default: from the checkpoint, else class0..).")
@click.option("--conf", default=0.3, show_default=True, type=FiniteRange(0, 1),
              help="Minimum score (objectness x class probability).")
@click.option("--nms", default=0.45, show_default=True, type=FiniteRange(0, 1),
              help="IoU above which NMS removes the weaker box of the same class.")
@click.option("--input-size", default=None, type=click.IntRange(INPUT_MIN, INPUT_MAX),
              help="Network input side, a multiple of 32 (default: the checkpoint's, else 416).")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1),
              help="Images per forward pass (more is faster on a GPU and takes more memory).")
@click.option("--max-det", default=300, show_default=True, type=click.IntRange(1),
              help="At most this many detections per image.")
@click.option("--device", default="auto", show_default=True, callback=lambda c, p, v: _device_name(v),
              help="auto (a CUDA GPU if there is one, else cpu), cpu, cuda, cuda:N or mps.")
def predict_cmd(weights, source, out_dir, classes_file, conf, nms, input_size, batch_size, max_det,
                device) -> None:
    """Detect objects in images: write them with boxes drawn, and detections.json.

    The path of detections.json is printed on stdout. Exit codes: 0 done, 1 unreadable
    weights or images (or a --device this machine lacks), 2 bad arguments.
    """
    import torch

    from trainer.data.augment import letterbox
    from trainer.data.images import read_image
    from trainer.model import decode, postprocess

    refuse_empty("--out", out_dir, "the folder for the annotated images")
    dev = _device(device)   # before the weights are pulled or read: a GPU missing says so first
    out = Path(out_dir)
    root = Path(source) if Path(source).is_dir() else Path(source).parent
    _refuse_writing_over([], root, out)   # (before anything is pulled: the common case)
    weights = _pulled(weights, os.path.join(out_dir, "weights"))
    model, names, size = _load_model(weights, classes_file, input_size)
    model.to(dev).eval()
    images = _find_images(Path(source), out)
    _refuse_writing_over(images, root, out)
    _make_folder(out)
    records, failed = [], []
    for start in range(0, len(images), batch_size):
        chunk = []
        for path in images[start:start + batch_size]:
            try:
                rgb = read_image(path)   # (a decompression bomb is refused before decoding)
            except DataError as exc:
                if len(images) == 1:
                    raise
                logger.warning("skipping %s: %s", path, str(exc).replace(f"cannot read image {path}: ", ""))
                failed.append(str(path))
                continue
            chunk.append((path, rgb))
        if not chunk:
            continue
        batch, transforms = [], []
        for _, rgb in chunk:
            padded, scale, (pad_x, pad_y) = letterbox(rgb, size)
            batch.append(torch.from_numpy(padded).permute(2, 0, 1))
            transforms.append((scale, float(pad_x), float(pad_y)))
        x = torch.stack(batch).to(dev, non_blocking=True).float().div_(255)
        with torch.inference_mode():
            decoded = decode(model(x), model.anchors, model.anchors_mask, size)
            dets = postprocess(decoded, conf, nms, max_det=max_det,
                               image_sizes=[rgb.shape[:2] for _, rgb in chunk], transforms=transforms)
        for (path, rgb), det in zip(chunk, dets):
            rel = path.relative_to(root)
            det = det.cpu().tolist()
            objects = [{"class_id": int(d[5]), "class": names[int(d[5])], "score": round(d[4], 5),
                        "box": [round(v, 2) for v in d[:4]]} for d in det]
            target = out / rel
            _make_folder(target.parent)
            drawn, fmt = _draw(rgb, objects), _format(target)
            _write(target, lambda fh: drawn.save(fh, format=fmt))
            records.append({"file": str(rel), "width": rgb.shape[1], "height": rgb.shape[0],
                            "detections": objects})
    result = {"weights": os.path.abspath(weights), "input_size": size, "conf": conf, "nms": nms,
              "classes": names, "images": records, "unreadable": failed}
    json_path = out / "detections.json"
    _write(json_path, lambda fh: fh.write(json.dumps(result, indent=1).encode()))
    total = sum(len(r["detections"]) for r in records)
    click.echo(f"{len(records)} images, {total} detections -> {out}"
               + (f" ({len(failed)} unreadable, skipped)" if failed else ""), err=True)
    click.echo(str(json_path))


@cli.command("export-onnx", epilog="""\b
Example:
  trainer export-onnx --weights logs/best.pt --out yolov4-tiny.onnx --input-size 416
""")
@click.option("--weights", "weights", required=True, callback=lambda c, p, v: _weights_arg(v),
              help="A .pth/.pt (port, our checkpoint) or Darknet .weights file; drive:path "
                   "pulls it (md5-verified) into weights/ beside OUT first.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The .onnx file to write.")
@click.option("--classes", "classes_file", type=click.Path(exists=True, dir_okay=False),
              help="Class names, one per line (stored in the ONNX metadata).")
@click.option("--input-size", default=None, type=click.IntRange(INPUT_MIN, INPUT_MAX),
              help="Network input side, a multiple of 32 (default: the checkpoint's, else 416).")
@click.option("--opset", default=17, show_default=True, type=click.IntRange(11),
              help="ONNX operator set the graph uses: lower for an older runtime, at most what "
                   "the installed torch exports.")
@click.option("--static-batch", is_flag=True, help="Fix the batch size at 1 instead of dynamic.")
def export_onnx_cmd(weights, out_path, classes_file, input_size, opset, static_batch) -> None:
    """Export the model with box decoding to ONNX: images [B,3,S,S] -> detections [B,N,5+C].

    Each detection row is cx, cy, w, h (input pixels), objectness, class probabilities;
    NMS is left to the runtime. Prints the written path on stdout.
    """
    from trainer.errors import require_onnx

    refuse_empty("--out", out_path, "the .onnx file to write")
    require_onnx()  # before loading anything, torch included
    from trainer.export import export_onnx, refuse_special_out

    refuse_special_out(out_path)

    _check_opset(opset)
    if not weights.startswith("drive:") and os.path.exists(out_path) and os.path.samefile(out_path, weights):
        # (The trained weights were replaced by the graph.)
        raise click.BadParameter(f"{out_path} is the --weights file; give the .onnx file another "
                                 "name", param_hint="'--out'")
    weights = _pulled(weights, os.path.join(os.path.dirname(os.path.abspath(out_path)),
                                            "weights"))
    model, names, size = _load_model(weights, classes_file, input_size, verb="exporting")
    try:
        path = export_onnx(model.eval(), out_path, input_size=size, opset=opset,
                           dynamic_batch=not static_batch, class_names=names)
    except OSError as exc:  # --out under a file, a read-only or full disk: was a traceback
        where = exc.filename or out_path
        if str(where).endswith(".partial"):  # (the temporary file beside it: name the --out)
            where = out_path
        why = "not a folder" if exc.errno in (errno.ENOTDIR, errno.EEXIST) else \
            (exc.strerror or str(exc)).lower()
        raise TrainerError(f"cannot write {out_path} ({where}: {why}); choose another "
                           "--out") from None
    click.echo(f"exported {model.num_classes}-class model at {size}x{size}", err=True)
    click.echo(path)


# --------------------------------------------------------------------------- helpers

def _check_opset(opset: int) -> None:
    """A usage error for an opset the installed torch cannot write (it raised a RuntimeError
    from deep inside the export, shown as a traceback)."""
    try:
        from torch.onnx._constants import ONNX_MAX_OPSET as top
    except ImportError:  # a torch without it: let the export say
        return
    if opset > top:
        raise click.BadParameter(f"{opset} is above {top}, the newest opset this torch exports; "
                                 f"give --opset {top} or lower", param_hint="'--opset'")



def _weights_arg(value: str) -> str:
    """``--weights``: a ``drive:`` path (pulled by the command), a Drive sharing link (as
    ``drive:id:<ID>[:<KEY>]``, as drivestage pull takes it; it was "file '…' does not
    exist": attack52), or a file that exists."""
    from drivestage import paths
    from drivestage.errors import DriveStageError

    if paths.is_link(value):
        try:
            return str(paths.parse_link(value))
        except DriveStageError as exc:
            raise click.BadParameter(str(exc), param_hint="'--weights'") from None
    if value.startswith("drive:") or os.path.isfile(value):
        return value
    what = "is a folder" if os.path.isdir(value) else "does not exist"
    raise click.BadParameter(f"file {value!r} {what}; give a weights file, or drive:path to "
                             "pull one from Drive", param_hint="'--weights'")


def _pulled(weights: str, folder: str) -> str:
    """``weights`` as a local file: a ``drive:`` path is staged into ``folder`` (md5-verified;
    a rerun finds it there, one metadata call); a Drive folder is refused."""
    if not weights.startswith("drive:"):
        return weights
    from trainer.staging import pull_weights

    return pull_weights(weights, folder, "--weights")


def _load_model(weights: str, classes_file: str | None, input_size: int | None,
                verb: str = "predicting"):
    """Build YoloV4Tiny to fit ``weights`` (class count, anchors, attention) and load it."""
    from trainer.model import DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, YoloV4Tiny
    from trainer.weights import inspect_weights, load_weights

    info = inspect_weights(weights)
    names = _read_classes(classes_file) if classes_file else info.get("classes")
    file_classes = info.get("num_classes")
    if names is not None and file_classes is not None and len(names) != file_classes:
        raise WeightsError(
            f"{classes_file or 'the checkpoint'} lists {len(names)} classes but {weights} was trained "
            f"for {file_classes}; pass the matching classes file")
    if names is None:
        if file_classes is None:
            raise WeightsError(f"{weights} has no detection heads (a backbone-only file?); "
                               f"{verb} needs trained weights")
        names = [f"class{i}" for i in range(file_classes)]
    size = input_size or int(info.get("input_size") or 416)
    if size % 32:
        raise click.BadParameter(f"{size} is not a multiple of 32", param_hint="--input-size")
    model = YoloV4Tiny(num_classes=len(names), anchors=info.get("anchors", DEFAULT_ANCHORS),
                       anchors_mask=info.get("anchors_mask", DEFAULT_ANCHORS_MASK),
                       input_size=size, phi=int(info.get("phi", 0)),
                       width=float(info.get("width", 1.0)))
    report = load_weights(model, weights)
    if report.skipped or any(k.startswith("yolo_head") for k in report.missing):
        raise WeightsError(f"{weights}: the detection heads did not load ({report.summary()})")
    return model, names, size


def _read_classes(path: str) -> list[str]:
    """The names in a classes file, read as training reads one (a byte order mark dropped,
    a name given twice refused)."""
    from trainer.data.voc import read_classes

    return read_classes(path)


#: The device types predict runs on; the others torch names (meta, xla, hpu, ...) are not.
_DEVICE_TYPES = ("cpu", "cuda", "mps")
_DEVICE_HINT = "give auto, cpu, cuda, cuda:N or mps"


def _device_name(spec: str) -> str:
    """``--device``'s check while the arguments are parsed: a name torch cannot parse, or of a
    type predict does not run on, is a bad argument (exit 2), said before anything is read
    (``meta`` and ``xla`` parse, and ended in a traceback after the weights were loaded).
    Whether this machine has that device is :func:`_device`'s (exit 1)."""
    if spec == "auto":
        return spec
    import torch

    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise click.BadParameter(f"{spec!r} is not a device name; {_DEVICE_HINT}",
                                 param_hint="'--device'") from None
    if dev.type not in _DEVICE_TYPES:
        raise click.BadParameter(f"{spec!r} is not a device predict runs on; {_DEVICE_HINT}",
                                 param_hint="'--device'")
    return spec


def _device(spec: str):
    """The device ``spec`` names (checked by :func:`_device_name`); TrainerError (exit 1) when
    this machine does not have it."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise TrainerError(f"--device {spec}: no CUDA GPU is available here; use --device cpu")
        if dev.index is not None and dev.index >= count:
            have = "1 CUDA GPU (cuda:0)" if count == 1 else f"{count} CUDA GPUs (cuda:0 to cuda:{count - 1})"
            raise TrainerError(f"--device {spec}: this machine has {have}; give --device cuda:0, or cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise TrainerError(f"--device {spec}: no Apple GPU (mps) is available here; use --device cpu")
    return dev


def _find_images(source: Path, out: Path) -> list[Path]:
    """The images of ``source``; those in ``out`` when it lies inside ``source`` are the
    annotated copies of an earlier run, not photos (read, they nested a level deeper every
    run: out/out/...)."""
    if source.is_file():
        return [source]
    outputs = os.path.realpath(out)
    if outputs == os.path.realpath(source) or not _within(outputs, os.path.realpath(source)):
        # (The same folder is refused by _refuse_writing_over. An --out above --source holds
        # the images read, not an earlier run's: `--source runs/imgs --out runs` found "no
        # images in runs/imgs", attackcli39.)
        outputs = "\0"
    found = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not _within(os.path.realpath(p.parent), outputs))
    if not found:
        raise DataError(f"no images in {source} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return found


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _refuse_writing_over(images: list[Path], root: Path, out: Path) -> None:
    """A usage error when an annotated image would take the place of an image read: ``--out``
    the ``--source`` folder (or the folder of the one image) replaced the photos with copies
    with boxes drawn on them. ``images`` empty: whether ``out`` is ``root`` itself."""
    same = os.path.realpath(out) == os.path.realpath(root) if not images else any(
        os.path.realpath(out / image.relative_to(root).parent) == os.path.realpath(image.parent)
        for image in images)
    if same:
        raise click.BadParameter(f"{out} would write the annotated images over the images "
                                 "--source reads; give another folder", param_hint="'--out'")


def _format(target: Path) -> str | None:
    """PIL's format for ``target``'s suffix (the file is written under another name first)."""
    from PIL import Image

    return Image.registered_extensions().get(target.suffix.lower())


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(folder, exc) from None


def _write(target: Path, write) -> None:
    """``write(fh)`` into ``target`` atomically: a kill or a full disk leaves no half-written
    file under its name, and a link at that name is replaced, not written through (to a file
    outside ``--out``)."""
    from drivestage.localfs import atomic_file, umask

    try:
        with atomic_file(str(target), mode=0o666 & ~umask()) as fh:
            write(fh)
    except OSError as exc:
        raise _cannot_write(target, exc) from None


def _cannot_write(path: Path, exc: OSError) -> TrainerError:
    why = "not a folder" if exc.errno in (errno.ENOTDIR, errno.EEXIST) else \
        (exc.strerror or str(exc)).lower()
    return TrainerError(f"cannot write {path} ({why}); free space there or choose another --out")


_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def _draw(rgb, objects):
    from PIL import Image, ImageDraw

    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    width = max(1, round(min(image.size) / 200))
    for obj in objects:
        colour = _COLOURS[obj["class_id"] % len(_COLOURS)]
        x1, y1, x2, y2 = obj["box"]
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        label = f"{obj['class']} {obj['score']:.2f}"
        tx1, ty1, tx2, ty2 = draw.textbbox((x1, y1), label)
        top = max(0, y1 - (ty2 - ty1) - 2)
        draw.rectangle([x1, top, x1 + (tx2 - tx1) + 4, top + (ty2 - ty1) + 2], fill=colour)
        draw.text((x1 + 2, top), label, fill=(0, 0, 0))
    return image
