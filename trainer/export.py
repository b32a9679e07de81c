"""ONNX export of YOLOv4-tiny with the box decoding inside the graph.

The exported graph takes ``images`` float32 ``[B, 3, S, S]`` (RGB, 0..1, letterboxed) and
returns ``detections`` ``[B, N, 5+C]``: (cx, cy, w, h) in input pixels, objectness, class
probabilities, exactly what :func:`trainer.model.decode` gives. NMS stays outside the graph
(thresholds are a deployment choice); ``trainer.model.postprocess`` or any NMS applies.
"""
from __future__ import annotations

import logging
import os
import tempfile
import warnings

import torch
from torch import nn

from trainer.errors import INSTALL_HINT, TrainerError, UsageError, require_onnx  # noqa: F401 (their home was here)
from trainer.model.decode import decode

logger = logging.getLogger(__name__)


class DecodedYolo(nn.Module):
    """``model`` followed by :func:`decode`: images in, ``[B, N, 5+C]`` out."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        outputs = self.model(images)
        return decode(outputs, self.model.anchors, self.model.anchors_mask,
                      (images.shape[2], images.shape[3]))


def refuse_special_out(path: str) -> None:
    """Refuse an ``--out`` that is there and no regular file (a device, a FIFO, a socket,
    a folder, or a link to one): the export renames its file into that place, and as root
    (Colab) ``--out /dev/null`` replaced the system's /dev/null with the graph
    (attackcli40)."""
    from drivestage.errors import UsageError as DrivestageUsageError
    from drivestage.special_files import special_kind, through_links

    what = special_kind(path)
    if what is not None:
        raise UsageError(f"--out {path} is {what}, not a file: the export would replace it "
                         "with the graph; give the .onnx file to write, e.g. yolov4-tiny.onnx")
    try:
        through_links(path, "--out")   # (a link that leads nowhere)
    except DrivestageUsageError as exc:
        raise UsageError(str(exc)) from None


def _copied_beside(tmp: str, target: str) -> str:
    """A copy of ``tmp`` made beside ``target`` (removed where the copy fails), ``tmp``
    removed: an ``--out`` link pointed elsewhere while the graph was traced gets it where it
    leads now, what a reader of ``--out`` sees (it was renamed onto the file the link had left,
    attacksig41); a copy, as that end may be on another file system (a rename: EXDEV)."""
    import shutil

    fd, moved = tempfile.mkstemp(dir=os.path.dirname(target),
                                 prefix=f".{os.path.basename(target)}.", suffix=".partial")
    os.close(fd)
    try:
        shutil.copyfile(tmp, moved)
        shutil.copymode(tmp, moved)
    except BaseException:
        os.unlink(moved)
        raise
    os.unlink(tmp)
    return moved


def export_onnx(model: nn.Module, path: str | os.PathLike, input_size: int | None = None,
                opset: int = 17, dynamic_batch: bool = True,
                class_names: list[str] | None = None) -> str:
    """Write ``model`` + decoding to ``path`` as ONNX (checked with ``onnx.checker``).

    The graph's metadata records ``input_size``, ``anchors``, ``anchors_mask`` and, when
    given, ``names`` (JSON), so a deployment needs no side files.
    """
    import json

    require_onnx()
    import onnx

    path = os.fspath(path)
    refuse_special_out(path)
    size = input_size or getattr(model, "input_size", 416)
    if size % 32:
        raise TrainerError(f"input size must be a multiple of 32, got {size}")
    wrapped = DecodedYolo(model).eval()
    dummy = torch.zeros(1, 3, size, size)
    # Through a link, as cp writes: the graph replaces the file it leads to, and the link
    # stays (the rename replaced the link itself).
    from drivestage.special_files import through_links

    target = through_links(path, "--out")
    folder = os.path.dirname(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    # A fresh name, made with O_EXCL: the fixed OUT.partial was opened as it was, and a link of
    # that name had its target written over.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.",
                               suffix=".partial")
    os.close(fd)
    try:
        # The tracer warns that the anchors and strides become constants: intended (fixed size).
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                wrapped, (dummy,), tmp, input_names=["images"], output_names=["detections"],
                opset_version=opset, dynamo=False,
                dynamic_axes={"images": {0: "batch"}, "detections": {0: "batch"}} if dynamic_batch else None,
            )
        graph = onnx.load(tmp)
        meta = {"input_size": size, "anchors": [list(a) for a in model.anchors],
                "anchors_mask": [list(m) for m in model.anchors_mask], "num_classes": model.num_classes}
        if class_names is not None:
            meta["names"] = list(class_names)
        for key, value in meta.items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        onnx.checker.check_model(graph)
        onnx.save(graph, tmp)
        from drivestage.localfs import umask

        os.chmod(tmp, 0o666 & ~umask())   # (mkstemp's file is private; the graph is not)
        # Asked again here: a node made at --out while the graph was traced (seconds to
        # minutes after the first look) was replaced all the same (attackstream40). What
        # is left is the moment between this look and the rename: rename(2) cannot be told
        # to replace regular files only.
        refuse_special_out(path)
        now = through_links(path, "--out")
        if now != target:   # (a link pointed elsewhere meanwhile: a deploy tool's flip)
            tmp, target = _copied_beside(tmp, now), now
        os.replace(tmp, target)    # only a checked graph appears under the final name
    except BaseException:
        # (A full disk or a failed check left OUT.partial behind, megabytes, every time.)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    logger.info("exported %s (input %dx%d, %d classes)", path, size, size, model.num_classes)
    return path
