"""Load pretrained weights into ``YoloV4Tiny``: the port's ``.pth``, Darknet ``.weights`` /
``.conv.29``, and our own checkpoints.

Tensors are matched by name and shape; what does not fit (a head trained for another class
count) is skipped and reported, never forced. Loading refuses (``WeightsError``) when the
backbone did not load completely, because training from a random backbone by accident is
the expensive mistake this guards against.

Darknet layout (``yolov4-tiny.cfg``): a header of int32 ``major, minor, revision`` and
``seen`` (int64 when ``major*10 + minor >= 2``, else int32), then per convolutional layer,
in cfg order, float32 blobs: with batch norm ``beta, gamma, running_mean, running_var,
weights``; without (the two linear 1x1 head convs) ``bias, weights``. Weights are
``[out, in, k, k]`` in C order, as in torch. The cfg layer -> module mapping:

==========  =================================  ===========================================
cfg layer   module                             note
==========  =================================  ===========================================
0, 1        backbone.conv1, backbone.conv2     3x3/2
2,4,5,7     backbone.resblock_body1.conv1..4   3 = route groups=2 id=1 (second half);
                                               6 = route -1,-2 (cat[conv3, conv2]);
                                               8 = route -6,-1 (cat[conv1, conv4]); 9 maxpool
10,12,13,15 backbone.resblock_body2.conv1..4   same pattern, 17 maxpool
18,20,21,23 backbone.resblock_body3.conv1..4   same pattern, 25 maxpool; 23 is feat1
26          backbone.conv3                     3x3 512 (feat2)
27          conv_for_P5                        1x1 256
28          yolo_headP5.0                      3x3 512
29          yolo_headP5.1                      1x1 linear, bias; 30 = yolo (mask 3,4,5)
32          upsample.upsample.0                31 = route -4 (layer 27); 33 upsample
35          yolo_headP4.0                      34 = route -1,23 (cat[upsampled, feat1])
36          yolo_headP4.1                      1x1 linear, bias; 37 = yolo (mask 1,2,3)
==========  =================================  ===========================================

``yolov4-tiny.conv.29`` (``darknet partial ... 29``) holds layers 0-28.
"""
from __future__ import annotations

import logging
import os
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Mapping

import numpy as np
import torch
from torch import nn

from trainer import torch_files
from trainer.errors import WeightsError
from trainer.model.backbone import width_fits

logger = logging.getLogger(__name__)

#: (cfg layer index, module path) of every convolutional layer, in file order.
DARKNET_CONVS: tuple[tuple[int, str], ...] = (
    (0, "backbone.conv1"), (1, "backbone.conv2"),
    (2, "backbone.resblock_body1.conv1"), (4, "backbone.resblock_body1.conv2"),
    (5, "backbone.resblock_body1.conv3"), (7, "backbone.resblock_body1.conv4"),
    (10, "backbone.resblock_body2.conv1"), (12, "backbone.resblock_body2.conv2"),
    (13, "backbone.resblock_body2.conv3"), (15, "backbone.resblock_body2.conv4"),
    (18, "backbone.resblock_body3.conv1"), (20, "backbone.resblock_body3.conv2"),
    (21, "backbone.resblock_body3.conv3"), (23, "backbone.resblock_body3.conv4"),
    (26, "backbone.conv3"),
    (27, "conv_for_P5"), (28, "yolo_headP5.0"), (29, "yolo_headP5.1"),
    (32, "upsample.upsample.0"), (35, "yolo_headP4.0"), (36, "yolo_headP4.1"),
)
#: The linear head convs, whose width depends on the class count of the file.
_HEAD_OUT = {"yolo_headP5.1": 0, "yolo_headP4.1": 1}


@dataclass
class LoadReport:
    """What ``load_weights`` did: tensor names loaded, skipped (with why) and missing."""

    path: str
    format: str                      # "pth", "checkpoint", "checkpoint-ema", "darknet"
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        text = (f"{os.path.basename(self.path)} ({self.format}): loaded {len(self.loaded)} tensors, "
                f"skipped {len(self.skipped)}, missing {len(self.missing)}")
        if self.skipped:
            first = next(iter(self.skipped.items()))
            text += f" (e.g. {first[0]}: {first[1]})"
        return text


def load_weights(model: nn.Module, path: str | os.PathLike, *, require_backbone: bool = True) -> LoadReport:
    """Load ``path`` into ``model`` in place and return (and log) a :class:`LoadReport`.

    Accepts the port's ``.pth`` state dicts, our checkpoints (``{"model": ..., "ema": ...}``;
    the EMA weights are preferred when present), and Darknet ``.weights`` / ``.conv.N``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    kind = _sniff(path)
    width = getattr(model, "width", None)   # (a YoloV4Tiny's model.width)
    if kind == "darknet":
        _refuse_width(path, 1.0, width)     # (Darknet's yolov4-tiny files: width 1 only)
        source, fmt = _read_darknet(model, path), "darknet"
    else:
        source, fmt = _read_torch(path)
        _refuse_width(path, _file_width(source), width)
    report, tensors = _match(model, source, path, fmt,
                             ignore_missing=("num_batches_tracked",) if fmt == "darknet" else ())
    backbone = [k for k in _own_keys(model) if k.startswith("backbone.") and not k.endswith("num_batches_tracked")]
    not_loaded = [k for k in backbone if k not in set(report.loaded)]
    if require_backbone and not_loaded:
        raise WeightsError(
            f"{path}: the backbone did not load ({len(not_loaded)} of {len(backbone)} backbone tensors "
            f"missing or of another shape, e.g. {not_loaded[0]}); is this a YOLOv4-tiny weights file?"
        )
    # Only now touch the model: a refused file leaves it exactly as it was.
    model.load_state_dict(tensors, strict=False)
    logger.info("weights: %s", report.summary())
    for key, why in report.skipped.items():
        logger.info("weights: skipped %s: %s", key, why)
    if report.missing:
        logger.info("weights: missing (left as initialised): %s", ", ".join(report.missing))
    return report


def _refuse_width(path: str, trained: float | None, width: float | None) -> None:
    """Refuse weights of another ``model.width`` than the model's: none of their layers fits
    (the port's weights at 0.5 said "the backbone did not load ...; is this a YOLOv4-tiny
    weights file?", a .weights file "this is not a yolov4-tiny Darknet file")."""
    if trained is None or width is None or trained == width:
        return
    raise WeightsError(f"{path} holds a network of model.width {trained:g} (1 is YOLOv4-tiny) "
                       f"and the config's is {width:g}: weights fit only the width they were "
                       f"trained at; set model.width={trained:g} to start from them, or train "
                       f"model.width {width:g} without model.weights")


def read_num_classes(path: str | os.PathLike, anchors_per_head: int = 3) -> int | None:
    """The class count a weights file was trained for (from its head width), if it has heads."""
    path = os.fspath(path)
    if _sniff(path) == "darknet":
        with open(path, "rb") as fh:
            _read_header(fh)
            floats = (os.path.getsize(path) - fh.tell()) // 4
        extra = floats - _darknet_floats_without_heads()
        per = anchors_per_head * (512 + 1 + 256 + 1)
        if extra <= 0 or extra % per:
            return None
        return extra // per - 5
    source, _ = _read_torch(path)
    w = source.get("yolo_headP5.1.weight")
    return None if w is None else int(w.shape[0]) // anchors_per_head - 5


def save_darknet(model: nn.Module, path: str | os.PathLike, upto_layer: int | None = None) -> None:
    """Write ``model`` as a Darknet ``.weights`` file (``upto_layer=29`` gives a ``.conv.29``)."""
    mods = dict(model.named_modules())
    with open(path, "wb") as fh:
        fh.write(struct.pack("<iiiq", 0, 2, 0, 0))
        for layer, name in DARKNET_CONVS:
            if upto_layer is not None and layer >= upto_layer:
                break
            for t in _darknet_tensors(mods[name]):
                fh.write(t.detach().cpu().float().contiguous().numpy().astype("<f4").tobytes())


# --------------------------------------------------------------------------- internals


def _sniff(path: str) -> str:
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:2] == b"PK" or head[:1] == b"\x80" or zipfile.is_zipfile(path):
        return "torch"
    name = os.path.basename(path).lower()
    if name.endswith(".weights") or ".conv." in name:
        return "darknet"
    if len(head) == 8 and struct.unpack("<ii", head) in ((0, 1), (0, 2)):
        return "darknet"
    raise WeightsError(
        f"{path}: unknown weights format (expected a PyTorch .pth/.pt file or Darknet .weights/.conv.N)"
    )


def _torch_load(path: str) -> Any:
    """:func:`trainer.torch_files.load`, its refusals worded for a weights file."""
    from drivestage.sizes import format_size

    try:
        return torch_files.load(path)
    except torch_files.ZipBomb as bomb:
        raise WeightsError(f"{path} would unpack to {format_size(bomb.unpacked)} from "
                           f"{format_size(bomb.size)} on disk (a zip bomb?); PyTorch writes its "
                           "files uncompressed: give weights saved by torch.save") from None
    except torch_files.PickledObject as exc:
        raise WeightsError(
            f"{path} holds a pickled Python object ({exc.name}), not only tensors; such "
            "objects are never loaded (a file from anywhere could run code): give a state dict "
            "(torch.save(model.state_dict(), PATH)) or a checkpoint of this trainer") from None
    except torch_files.Unreadable as exc:
        damaged = "damaged" if exc.unpickler else "truncated, damaged"
        raise WeightsError(f"{path} cannot be read as PyTorch weights ({exc.detail}); it is "
                           f"{damaged} or not a weights file") from None


def _read_torch(path: str, obj: Any = None) -> tuple[dict[str, torch.Tensor], str]:
    if obj is None:
        obj = _torch_load(path)
    fmt = "pth"
    if isinstance(obj, Mapping) and ("model" in obj or "ema" in obj):
        ema = _as_state_dict(obj.get("ema"))
        if ema:
            obj, fmt = ema, "checkpoint-ema"
        else:
            obj, fmt = _as_state_dict(obj.get("model")), "checkpoint"
    elif isinstance(obj, Mapping) and "state_dict" in obj:
        obj = _as_state_dict(obj["state_dict"])
    elif isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} holds no state dict of tensors (keys: {list(obj)[:5] if isinstance(obj, Mapping) else type(obj).__name__})")
    return {_strip(k): v for k, v in obj.items()}, fmt


def _as_state_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """A state dict from a checkpoint entry: the dict itself or one nested level of it."""
    if not isinstance(obj, Mapping) or not obj:
        return None
    if all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj)
    for key in ("state_dict", "model", "module", "ema"):
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return dict(inner)
    return None


def _strip(key: str) -> str:
    # DDP and torch.compile wrap the model; their prefixes are not part of our names.
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


def _own_keys(model: nn.Module) -> list[str]:
    return [_strip(k) for k in model.state_dict()]


def _match(model: nn.Module, source: Mapping[str, torch.Tensor], path: str, fmt: str,
           ignore_missing: tuple[str, ...] = ()) -> tuple[LoadReport, dict[str, torch.Tensor]]:
    report = LoadReport(path=path, format=fmt)
    own = model.state_dict()
    to_load = {}
    for key, target in own.items():
        name = _strip(key)
        src = source.get(name)
        if src is None:
            if not (ignore_missing and name.endswith(ignore_missing)):
                report.missing.append(name)
            continue
        if tuple(src.shape) != tuple(target.shape):
            report.skipped[name] = f"shape {tuple(src.shape)} in file, {tuple(target.shape)} in model"
            continue
        to_load[key] = src
        report.loaded.append(name)
    wanted = {_strip(k) for k in own}
    report.unexpected = [k for k in source if k not in wanted]
    return report, to_load


def _darknet_tensors(module: nn.Module) -> list[torch.Tensor]:
    """The tensors of one conv layer in Darknet's file order."""
    if isinstance(module, nn.Conv2d):
        return [module.bias, module.weight]
    return [module.bn.bias, module.bn.weight, module.bn.running_mean, module.bn.running_var, module.conv.weight]


def _darknet_names(name: str, module: nn.Module) -> list[str]:
    if isinstance(module, nn.Conv2d):
        return [f"{name}.bias", f"{name}.weight"]
    return [f"{name}.bn.bias", f"{name}.bn.weight", f"{name}.bn.running_mean", f"{name}.bn.running_var",
            f"{name}.conv.weight"]


def _darknet_floats_without_heads() -> int:
    """Floats in a full yolov4-tiny .weights file apart from the two linear head convs."""
    from trainer.model.yolo import YoloV4Tiny

    ref = YoloV4Tiny(num_classes=1)
    mods = dict(ref.named_modules())
    return sum(t.numel() for _, n in DARKNET_CONVS if n not in _HEAD_OUT for t in _darknet_tensors(mods[n]))


def _read_header(fh: BinaryIO) -> tuple[int, int, int, int]:
    raw = fh.read(12)
    if len(raw) < 12:
        raise WeightsError(f"{fh.name}: too short for a Darknet weights header")
    major, minor, revision = struct.unpack("<iii", raw)
    wide = (major * 10 + minor) >= 2 and major < 1000 and minor < 1000
    raw = fh.read(8 if wide else 4)
    seen = struct.unpack("<q" if wide else "<i", raw)[0]
    return major, minor, revision, seen


def _read_darknet(model: nn.Module, path: str) -> dict[str, torch.Tensor]:
    """Darknet blobs as a state dict named after ``model``'s modules (streamed layer by layer)."""
    mods = dict(model.named_modules())
    mods = {_strip(k): v for k, v in mods.items()}
    size = os.path.getsize(path)
    out: dict[str, torch.Tensor] = {}
    with open(path, "rb") as fh:
        _read_header(fh)
        remaining = (size - fh.tell()) // 4
        if (size - fh.tell()) % 4:
            raise WeightsError(f"{path}: size is not a whole number of float32 values; truncated?")
        file_classes = None
        for layer, name in DARKNET_CONVS:
            if remaining == 0:
                break                       # a partial file such as .conv.29 ends here
            module = mods.get(name)
            if module is None:
                raise WeightsError(f"{path}: the model has no module {name} for Darknet layer {layer}")
            shapes = [tuple(t.shape) for t in _darknet_tensors(module)]
            if name in _HEAD_OUT:
                if file_classes is None:
                    file_classes = _file_classes(path, model)
                n_a = len(model.anchors_mask[_HEAD_OUT[name]]) if hasattr(model, "anchors_mask") else 3
                out_ch = n_a * (5 + file_classes)
                shapes = [(out_ch,), (out_ch, module.in_channels, 1, 1)]
            need = sum(int(np.prod(s)) for s in shapes)
            if need > remaining:
                raise WeightsError(
                    f"{path}: ends inside Darknet layer {layer} ({name}): {need} values needed, "
                    f"{remaining} left; the file is truncated or not yolov4-tiny"
                )
            for key, shape in zip(_darknet_names(name, module), shapes):
                n = int(np.prod(shape))
                data = np.frombuffer(fh.read(4 * n), dtype="<f4")
                out[key] = torch.from_numpy(data.copy()).view(shape)
            remaining -= need
        if remaining:
            raise WeightsError(f"{path}: {remaining} values left after the last yolov4-tiny layer; "
                               f"this is not a yolov4-tiny Darknet file")
    return out


def _file_classes(path: str, model: nn.Module) -> int:
    n = read_num_classes(path, anchors_per_head=len(getattr(model, "anchors_mask", [[0] * 3])[0]))
    if n is None or n < 1:
        raise WeightsError(f"{path}: its size fits no class count of yolov4-tiny; truncated or another network?")
    return n


#: Attention variant (phi) recognised from the parameter names of its blocks.
_PHI_BY_KEY = {"feat1_att.fc.": 1, "feat1_att.channelattention.": 2, "feat1_att.conv.": 3,
               "feat1_att.conv_1x1.": 4}


#: The shape each recorded field must have: (what it is, a check of it).
_RECORDED = {
    "class names": lambda v: all(isinstance(n, str) for n in v),
    "model.anchors": lambda v: isinstance(v, list) and len(v) == 6 and all(
        isinstance(a, list) and len(a) == 2 and all(_number(x) for x in a) for a in v),
    "model.anchors_mask": lambda v: isinstance(v, list) and len(v) == 2 and all(
        isinstance(m, list) and len(m) == 3 and all(isinstance(i, int) for i in m) for m in v),
    "model.input_size": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "model.phi": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "model.width": lambda v: _number(v) and width_fits(v),
}


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _recorded(path: str, what: str, value: Any) -> Any:
    """``value`` as a checkpoint recorded ``what``, checked: the checkpoint is anybody's
    pickle, and names (or anchors) made of one list shared 10**9 times (a few hundred bytes)
    were spelt out by predict's detections.json and eval's messages: a hang, gigabytes."""
    if not _RECORDED[what](value):
        from trainer.config import shown

        raise WeightsError(f"{path} records a model that cannot be built ({what}: "
                           f"{shown(value)}); use weights saved by this trainer, or a state dict")
    return value


def inspect_weights(path: str | os.PathLike) -> dict[str, Any]:
    """What a weights file says about the model it fits, without building one.

    Returns a dict with ``num_classes`` (None when the file has no heads), ``phi`` and, for
    our checkpoints, ``anchors``, ``anchors_mask``, ``input_size`` and ``classes`` from the
    stored config when it has them.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    if _sniff(path) == "darknet":
        return {"num_classes": read_num_classes(path), "phi": 0}
    obj = _torch_load(path)
    source, _ = _read_torch(path, obj)
    info: dict[str, Any] = {}
    cfg = obj.get("config") if isinstance(obj, Mapping) else None
    model_cfg = cfg.get("model") if isinstance(cfg, Mapping) else None
    if isinstance(model_cfg, Mapping):
        for key in ("anchors", "anchors_mask", "input_size", "phi", "width"):
            if key in model_cfg:
                info[key] = _recorded(path, f"model.{key}", model_cfg[key])
    data_cfg = cfg.get("data") if isinstance(cfg, Mapping) else None
    if isinstance(data_cfg, Mapping) and isinstance(data_cfg.get("classes"), list):
        info["classes"] = _recorded(path, "class names", list(data_cfg["classes"]))
    if isinstance(obj, Mapping) and isinstance(obj.get("class_names"), list):
        # what training read (also from a classes file)
        info["classes"] = _recorded(path, "class names", list(obj["class_names"]))
    head = source.get("yolo_headP5.1.weight")
    n_a = len(info.get("anchors_mask", [[0, 0, 0]])[0])
    info["num_classes"] = None if head is None else int(head.shape[0]) // n_a - 5
    if "phi" not in info:
        info["phi"] = next((phi for prefix, phi in _PHI_BY_KEY.items()
                            if any(k.startswith(prefix) for k in source)), 0)
    width = _file_width(source)
    if "width" not in info and width is not None and width != 1.0:
        info["width"] = width
    return info


def _file_width(source: Mapping[str, torch.Tensor]) -> float | None:
    """The ``model.width`` a state dict was trained at, from its second layer (64 channels at
    width 1; None where that is missing or fits no width). Not the first: kept at 8 channels
    at least, it has 8 at widths 0.125 and 0.25, 16 at 0.375 and 0.5 (a checkpoint of 0.125
    without its config was built as 0.25 and did not load)."""
    second = source.get("backbone.conv2.conv.weight")
    if not hasattr(second, "shape") or len(second.shape) != 4:
        return None
    width = int(second.shape[0]) / 64
    return width if width_fits(width) else None
