"""Training configuration: YAML mapped onto typed dataclasses.

Every key is a dataclass field whose ``help`` metadata is its one-line description.
Unknown or misspelt keys are refused with the nearest valid key; ``--set a.b=value``
overrides are parsed as YAML and coerced to the field's type.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import reprlib
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import yaml

from drivestage import paths
from drivestage.errors import DriveStageError
from trainer.config_checks import check_value, validate
from trainer.errors import ConfigError

logger = logging.getLogger(__name__)

#: Anchors of YOLOv4-tiny in pixels at 416 (Darknet ``yolov4-tiny.cfg``).
DEFAULT_ANCHORS = [[10, 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]]
#: The longest train.grace_seconds: 30 days (as drivestage mirror's --grace). Longer (1e10)
#: ended the stop's wait for its upload in an OverflowError traceback, not the stop's line.
MAX_GRACE_SECONDS = 30 * 86400.0
#: Which anchors each head uses: stride 32 first, then stride 16 (the port's order).
DEFAULT_ANCHORS_MASK = [[3, 4, 5], [1, 2, 3]]


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A field with its one-line description; mutable defaults are copied."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: __import__("copy").deepcopy(d),
                     metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class DataConfig:
    """Where the data lives and how it is read."""

    classes: Union[str, list] = _f("model_data/voc_classes.txt",
                                   "class names: a file with one name per line, or a list")
    root: str = _f("./data", "local folder that data.drive_zip is pulled and extracted into")
    drive_zip: Optional[str] = _f(None, "archive to pull and extract first (drive:path or a local "
                                        "path); a folder is pulled whole, archives extracted")
    keep_archive: bool = _f(True, "keep data.drive_zip's downloaded archive once extracted (false: "
                                  "removed once its members are verified, as drivestage pull "
                                  "--remove-archive: the data takes its room once)")
    voc_root: Optional[str] = _f(None, "VOCdevkit folder; found under data.root when empty")
    year: str = _f("2007", "VOC year folder (VOCdevkit/VOC<year>) the split names refer to")
    train: str = _f("train", "training set: an annotation-lines file, or a split name in ImageSets/Main "
                             "(its lines written to data.root/.drivestage-trainer/annotations/"
                             "<key>/<year>_<split>.txt, one folder per dataset and class list)")
    val: str = _f("val", "validation set: an annotation-lines file, or a split name")
    workers: int = _f(2, "DataLoader worker processes, 0 to 64 (0 = load in the main process)")
    cache: str = _f("none", "decoded-image cache: none, ram (if it fits half the free memory) or disk "
                            "(data.root/image-cache, keyed by file content)", choices=("none", "ram", "disk"))
    max_val_images: int = _f(0, "evaluate mAP on at most this many val images (0 = all)")
    allow_change: bool = _f(False, "resume in the middle of an epoch from a checkpoint saved from "
                                   "another training list or train.seed (refused otherwise: trainer.sample_list)")


@dataclass
class ModelConfig:
    """The network and its starting weights."""

    input_size: int = _f(416, "network input side in pixels: a multiple of 32 from 32 to 4096")
    weights: Optional[str] = _f(None, "pretrained weights (.pth/.weights/.pt), local or drive:path (pulled into data.root/.drivestage-trainer/weights/)")
    anchors: list = _f(DEFAULT_ANCHORS, "anchor boxes in pixels at 416, six [w, h] pairs")
    anchors_mask: list = _f(DEFAULT_ANCHORS_MASK, "anchor indices of the stride-32 and stride-16 heads")
    phi: int = _f(0, "attention after the backbone: 0 none, 1 SE, 2 CBAM, 3 ECA, 4 coordinate attention")
    width: float = _f(1.0, "every layer's channels times this, in eighths from 0.125 to 4: 1 is YOLOv4-tiny "
                           "(pretrained weights fit it alone); 0.5 or 0.25 a network 4x or 16x smaller, "
                           "for little data or a CPU")
    sync_bn: bool = _f(False, "convert BatchNorm to SyncBatchNorm under DDP")


@dataclass
class TrainConfig:
    """Schedule, optimizer, augmentation and bookkeeping."""

    epochs: int = _f(100, "total epochs (freeze and unfreeze phases together)")
    freeze_epochs: int = _f(50, "epochs with the backbone frozen at the start (0 = none)")
    batch_size: int = _f(16, "batch size of the unfrozen phase (total over all DDP processes: "
                             "a multiple of the processes, else the largest multiple below is "
                             "trained)")
    freeze_batch_size: int = _f(32, "batch size of the frozen phase (total over all DDP "
                                    "processes: a multiple of the processes, else the largest "
                                    "multiple below is trained)")
    lr: float = _f(1e-2, "initial learning rate at nominal batch size 64 (scaled by batch/64)")
    min_lr_ratio: float = _f(0.01, "final learning rate as a fraction of train.lr")
    optimizer: str = _f("sgd", "sgd (nesterov), adam or adamw", choices=("sgd", "adam", "adamw"))
    momentum: float = _f(0.937, "SGD momentum / Adam beta1")
    weight_decay: float = _f(5e-4, "weight decay on conv/linear weights (not on BN or biases)")
    lr_schedule: str = _f("cos", "cos (cosine with warmup) or step", choices=("cos", "step"))
    nbs: int = _f(64, "nominal batch size the learning rate refers to")
    mosaic: bool = _f(True, "use mosaic augmentation")
    mosaic_prob: float = _f(0.5, "probability of mosaic per sample")
    mixup: bool = _f(True, "use mixup on mosaic samples")
    mixup_prob: float = _f(0.5, "probability of mixup per mosaic sample")
    special_aug_ratio: float = _f(0.7, "mosaic/mixup only during this leading fraction of epochs")
    label_smoothing: float = _f(0.0, "label smoothing of the class targets")
    focal_loss: bool = _f(False, "focal loss on objectness")
    ema: bool = _f(True, "keep an exponential moving average of the weights (used for eval/best)")
    ema_decay: float = _f(0.9999, "EMA decay at full warm-up")
    amp: bool = _f(True, "mixed precision on CUDA (ignored on CPU)")
    cpu_amp: bool = _f(False, "bf16 autocast on CPUs with native bf16 (AVX512-BF16/AMX): 2-4x faster steps")
    grad_clip: float = _f(10.0, "clip the gradient norm to this value (0 = off)")
    save_period: int = _f(4, "save epoch_NNN.pt (and sync to Drive) every this many epochs")
    keep_local: int = _f(0, "keep this many newest epoch_NNN.pt in train.out_dir (0 = every one); "
                            "an older one goes once verified on drive.logs (last.pt, best.pt, "
                            "autosaves are not counted)")
    save_minutes: float = _f(10.0, "also save autosave_<iteration>.pt (mirrored to Drive) every this "
                                   "many minutes of training, mid-epoch too (0 = off)")
    grace_seconds: float = _f(25.0, "on SIGTERM, Ctrl-C or SIGHUP: seconds to save a checkpoint and "
                                    "verify it on Drive before exiting (143, 130, 129)")
    silent_rank_minutes: float = _f(5.0, "under torchrun: a rank silent this long (stopped, hung, its "
                                         "machine cut off) ends the run; rank 0 saves (0 = off)")
    eval_period: int = _f(10, "compute mAP every this many epochs (and at the last epoch)")
    conf_thresh: float = _f(0.001, "score threshold for detections during mAP evaluation")
    nms_thresh: float = _f(0.5, "IoU threshold of non-maximum suppression during evaluation")
    out_dir: str = _f("logs", "local run folder: checkpoints, results.csv, plots, TensorBoard")
    seed: int = _f(11, "seed; data order and augmentation are seeded from (seed, epoch)")
    deterministic: bool = _f(False, "deterministic algorithms (bit-identical resume on CPU)")
    device: str = _f("auto", "auto, cpu, cuda or cuda:N")
    channels_last: bool = _f(False, "channels-last memory format (faster on many CPUs/GPUs)")
    log_period: int = _f(0, "log a progress line every this many iterations (0 = only the bar)")


@dataclass
class DriveConfig:
    """Where checkpoints and logs are mirrored."""

    logs: Optional[str] = _f(None, "remote folder the run folder is mirrored to (drive:path); empty = off")
    keep_last: int = _f(3, "keep this many newest epoch checkpoints on Drive (0: no such rule; "
                           "with keep_best 0 and no max_bytes too, nothing is pruned)")
    keep_best: int = _f(1, "also keep this many best checkpoints (by mAP@0.5; 0: no such rule)")
    max_bytes: Union[int, str, None] = _f(None, "cap on the run's checkpoint bytes on Drive, e.g. 2GB (oldest pruned first)")
    lease_minutes: float = _f(1.0, "renew the run's lease on drive.logs this often; another trainer "
                                   "of the run is refused while it is renewed, and takes it over "
                                   "once silent for twice this and a margin (0: no lease)")
    take_over: bool = _f(False, "take the run's lease from a trainer that still renews it (it "
                                "stops at its next save); also --take-over")


@dataclass
class Config:
    """The whole run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    drive: DriveConfig = field(default_factory=DriveConfig)

    def to_dict(self) -> dict:
        """Plain nested dict (what checkpoints store)."""
        return dataclasses.asdict(self)


_SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {name: hints[name] for name in _SECTIONS}


def valid_keys() -> list[str]:
    """Every dotted key a config may set, e.g. ``train.epochs``."""
    keys = []
    for sec, cls in _section_types().items():
        keys.extend(f"{sec}.{f.name}" for f in dataclasses.fields(cls))
    return keys


def describe_keys() -> dict[str, str]:
    """Dotted key -> its one-line description."""
    out = {}
    for sec, cls in _section_types().items():
        for f in dataclasses.fields(cls):
            out[f"{sec}.{f.name}"] = f.metadata["help"]
    return out


def _unknown(key: str, where: str) -> ConfigError:
    keys = valid_keys()
    if "." not in key:  # a misspelt section name, or a key without its section (epochs: 10)
        near = difflib.get_close_matches(key, list(_SECTIONS), n=1, cutoff=0.5) or [k for k in keys if k.endswith("." + key)][:1]
        hint = f"; did you mean '{near[0]}'?" if near else f"; valid sections: {', '.join(_SECTIONS)}"
        return ConfigError(f"unknown config section '{key}'{where}{hint}")
    # Match the full dotted key first, then the last part alone (a misspelt leaf).
    near = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if not near:
        leaf = key.rsplit(".", 1)[-1]
        by_leaf = {k.rsplit(".", 1)[-1]: k for k in keys}
        m = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.6)
        near = [by_leaf[m[0]]] if m else []
    hint = f"; did you mean '{near[0]}'?" if near else f"; valid sections: {', '.join(_SECTIONS)}"
    return ConfigError(f"unknown config key '{key}'{where}{hint}")


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 8, 8, 120, 120


def shown(value: Any) -> str:
    """``repr(value)`` for a message, bounded (at most 200 characters, little work): YAML
    aliases (or a pickle's shared references) make a list of 10**9 items out of 500 bytes,
    and spelling it out hung the command."""
    text = _REPR.repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _coerce(key: str, value: Any, tp: Any, meta: dict) -> Any:
    """Check/convert ``value`` to the annotated type ``tp`` or raise naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union:
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("null", "none", "~", "") and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(key, value, a, meta)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[-1] if errors else f"bad value for '{key}'")
    bad = ConfigError(f"config key '{key}' expects {getattr(tp, '__name__', tp)}, got {shown(value)}")
    if tp is bool:
        if isinstance(value, bool):
            out = value
        elif isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            out = value.lower() in ("true", "yes", "on", "1")
        elif isinstance(value, int) and value in (0, 1):
            out = bool(value)
        else:
            raise bad
    elif tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            out = value
        elif isinstance(value, float) and value.is_integer():
            out = int(value)
        elif isinstance(value, str):
            try:
                out = int(float(value)) if float(value).is_integer() else None
            except ValueError:
                out = None
            if out is None:
                raise bad
        else:
            raise bad
    elif tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value)  # YAML reads "1e-2" as a string; accept it
            except ValueError:
                raise bad from None
        else:
            raise bad
        if not math.isfinite(out):  # YAML's .nan/.inf: every float key needs a real number
            raise ConfigError(f"config key '{key}' expects a finite number, got {shown(value)}")
    elif tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise bad
        out = str(value)
    elif tp is list or origin is list:
        if not isinstance(value, list):
            raise bad
        out = value
    else:  # pragma: no cover - every field uses one of the types above
        out = value
    choices = meta.get("choices")
    if choices and out not in choices:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(choices)}, got {shown(out)}")
    return out


def _apply(cfg: Config, key: str, value: Any, where: str) -> None:
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in _SECTIONS:
        raise _unknown(key, where)
    section = getattr(cfg, parts[0])
    fields = {f.name: f for f in dataclasses.fields(section)}
    if parts[1] not in fields:
        raise _unknown(key, where)
    hints = typing.get_type_hints(type(section))
    check_value(key, value, where, hints[parts[1]], key in _PATHS)
    if key in _PATHS and isinstance(value, str):   # (data.root: ~/data was ./~/data)
        value = os.path.expanduser(value)
    if key in _DRIVE_KEYS and isinstance(value, str) and paths.is_link(value):
        # A sharing link pasted as drivestage pull takes it: a local path to the trainer
        # (data.drive_zip: never pulled, "set data.drive_zip"; model.weights: "written
        # drive:https://…"): attack52.
        try:
            value = str(paths.parse_link(value))
        except DriveStageError as exc:
            raise ConfigError(f"config key '{key}'{where}: {exc}") from None
    setattr(section, parts[1], _coerce(key, value, hints[parts[1]], dict(fields[parts[1]].metadata)))


#: Keys that take a ``drive:`` path, so a Drive sharing link too (``drive:id:<ID>[:<KEY>]``).
_DRIVE_KEYS = frozenset({"data.drive_zip", "model.weights", "drive.logs"})
#: Keys naming local files or folders: a leading ``~`` is the home folder, as in a shell.
_PATHS = frozenset({"data.root", "data.voc_root", "data.classes", "data.train", "data.val",
                    "data.drive_zip", "model.weights", "train.out_dir", "drive.logs"})


def _flatten(mapping: Any, where: str, prefix: str = "") -> list[tuple[str, Any]]:
    if not isinstance(mapping, dict):
        raise ConfigError(f"config{where} must be a mapping of sections (data, model, train, drive), "
                          f"got {type(mapping).__name__}")
    out = []
    for k, v in mapping.items():
        key = f"{prefix}{k}"
        if not prefix:
            if key not in _SECTIONS:
                raise _unknown(key, where)
            if v is None:
                continue
            if not isinstance(v, dict):
                raise ConfigError(f"config section '{key}'{where} must be a mapping, got {shown(v)}")
            out.extend(_flatten(v, where, prefix=f"{key}."))
        else:
            out.append((key, v))
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.lr=0.01"`` -> ``("train.lr", 0.01)``; the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. train.epochs=10")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, dict) and raw.strip().endswith(":") and "{" not in raw:
        # (`drive.logs=drive:` is a mapping to YAML: "expects str, got {'drive': None}")
        value = raw.strip()
    return key, value


class _UniqueKeys(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping: PyYAML keeps the
    later one whole, without a word (a ``train:`` section added at the end of the file
    dropped every key of the first: its ``out_dir``, ``lr``, ``device`` back to defaults)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue   # (a merge's keys are YAML's to replace: an explicit key wins)
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice in one mapping (first at "
                    f"line {seen[key] + 1}), and YAML would keep only the later one",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _yaml_problem(exc: Exception) -> str:
    """PyYAML's error on one line, where it is first (its str() is four lines, each mark
    with the file's name again): ``line 3, column 6: expected ',' or ']', but got ':'
    (while parsing a flow sequence that starts at line 2, column 12)``."""
    def at(mark: Any) -> str:
        return f"line {mark.line + 1}, column {mark.column + 1}"

    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if not problem or mark is None:
        return " ".join(str(exc).split())
    text = f"{at(mark)}: {problem}"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context:
        text += f" ({context}" + (f" that starts at {at(start)}" if start is not None else "") + ")"
    if "'\\t'" in problem:   # (ux35: the tab is invisible in the line quoted)
        text += "; YAML takes no tab there (it indents with spaces): replace it with spaces"
    elif "escape" in problem and "double-quoted" in (context or ""):   # ("C:\Users\me")
        text += "; in double quotes \\ starts an escape: write a path in 'single quotes'"
    return text


def _bad_byte(data: bytes, exc: UnicodeDecodeError) -> str:
    """Where ``data`` stops being UTF-8: ``line N holds the byte 0xE9``."""
    line = data[:exc.start].count(b"\n") + 1
    return f"line {line} holds the byte 0x{data[exc.start]:02X}"


#: The most a config file may hold: configs/voc.yaml, every key commented, is 3 KB. A larger
#: file is one given by mistake (a dataset list, a log, /dev/zero): refused before it is
#: parsed, which took 83 s for 100 MB (attackcli40).
MAX_CONFIG_BYTES = 1 << 20


def _config_text(path: str) -> str:
    """The text of the config file at ``path``, read once: a pipe (``-c <(envsubst <
    cfg.yaml)``) or a FIFO is one too, and gives its bytes once only."""
    from drivestage.small_files import read_at_most

    if not os.path.exists(path):
        raise ConfigError(f"config file not found: {path}")
    if os.path.isdir(path):
        raise ConfigError(f"config {path} is a folder; give the YAML file, e.g. -c "
                          "configs/voc.yaml")
    try:
        data = read_at_most(path, MAX_CONFIG_BYTES)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    if data is None:
        raise ConfigError(f"config {path} holds more than 1 MiB: no config is that large; "
                          "give the YAML config, e.g. -c configs/voc.yaml")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:  # (a file saved as Windows-1252: was a traceback)
        raise ConfigError(f"config {path} is not UTF-8 text ({_bad_byte(data, exc)}); save "
                          "it as UTF-8") from None


def load_config(path: Optional[str] = None, overrides: Optional[list[str]] = None) -> Config:
    """Read ``path`` (YAML) onto the defaults, apply ``key=value`` overrides, validate."""
    cfg = Config()
    if path is not None:
        if path == "":   # (`-c "$CONFIG"` unset: "config file not found: " named nothing)
            raise ConfigError("the config file's path is empty (an unset variable?); give a "
                              "YAML config, e.g. -c configs/voc.yaml")
        text = _config_text(path)
        try:
            raw = yaml.load(text, Loader=_UniqueKeys) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {path} is not valid YAML: {_yaml_problem(exc)}; "
                              "fix the file there") from None
        where = f" in {path}"
        for key, value in _flatten(raw, where):
            _apply(cfg, key, value, where)
    for text in overrides or []:
        key, value = parse_override(text)
        if "=" in text and not text.split("=", 1)[1].strip():
            # (`--set drive.logs="$LOGS"` unset: null, a whole run trained and never
            # mirrored to Drive; model.weights: trained from scratch: attack52)
            raise ConfigError(f"--set {key}= has no value (an unset variable?); give one, or "
                              f"write {key}=null for none")
        _apply(cfg, key, value, " (--set)")
    validate(cfg)
    return cfg


def config_from_dict(data: dict) -> Config:
    """Rebuild a Config from :meth:`Config.to_dict` output (checkpoints)."""
    cfg = Config()
    for key, value in _flatten(data, " (checkpoint)"):
        _apply(cfg, key, value, " (checkpoint)")
    return cfg


def model_signature(cfg: Config, num_classes: int) -> dict:
    """What fixes the parameter shapes; a resume with a different signature is refused.
    ``width`` only when it is not 1: a checkpoint saved before the key existed is of width 1."""
    sig = {"num_classes": int(num_classes), "anchors_mask": cfg.model.anchors_mask,
           "phi": cfg.model.phi}
    if cfg.model.width != 1.0:
        sig["width"] = cfg.model.width
    return sig


def dump_yaml(cfg: Config) -> str:
    """The config as YAML with each key's description as a comment."""
    helps = describe_keys()
    lines = []
    for sec, values in cfg.to_dict().items():
        lines.append(f"{sec}:")
        for k, v in values.items():
            text = yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()
            if text.endswith("\n..."):
                text = text[:-4].strip()
            if text.endswith("..."):
                text = text[:-3].strip()
            lines.append(f"  {k}: {text}  # {helps[f'{sec}.{k}']}")
    return "\n".join(lines) + "\n"
