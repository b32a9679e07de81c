"""walk21's messages (docs/troubleshooting.md): each made to happen through the real CLI, as
a new user on Kaggle met it. More of walk21's tests: tests/test_walk21.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from _messages import error_line, error_text, renders, shown
from _tmpfs import small_disk  # noqa: F401 (a fixture)


# ------------------------------------------------------------ export-onnx's option errors

def _weights(tmp_path):
    import torch

    from trainer.model import YoloV4Tiny

    path = tmp_path / "w.pth"
    torch.save(YoloV4Tiny(num_classes=2, input_size=64).state_dict(), path)
    return str(path)


def _export(*args: str):
    from click.testing import CliRunner

    from trainer.cli import cli

    return CliRunner().invoke(cli, ["export-onnx", *args])


@renders("is above …, the newest opset this torch exports; give --opset … or lower")
def test_export_an_opset_this_torch_cannot_write_is_a_usage_error(tmp_path):
    """`--opset 99` (its --help said nothing of a limit) ended in torch's traceback
    (`RuntimeError: Unsupported onnx_opset_version: 99`), exit 1."""
    from torch.onnx._constants import ONNX_MAX_OPSET as top

    r = _export("--weights", _weights(tmp_path), "--out", str(tmp_path / "m.onnx"),
                "--opset", str(top + 1))
    assert r.exit_code == 2, r.output
    assert error_line(r.stderr) == (
        f"Error: Invalid value for '--opset': {top + 1} is above {top}, the newest opset this "
        f"torch exports; give --opset {top} or lower")
    shown("is above …, the newest opset this torch exports; give --opset … or lower",
          error_line(r.stderr))
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.onnx.partial").exists()


@renders("cannot write … (…); choose another --out")
def test_export_to_a_place_that_cannot_be_written_says_so_in_one_line(tmp_path):
    """`--out /proc/m.onnx` (or under a file) ended in a traceback."""
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "m.onnx"
    r = _export("--weights", _weights(tmp_path), "--out", str(out), "--input-size", "64")
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (
        f"Error: cannot write {out} ({tmp_path / 'afile'}: not a folder); choose another --out")
    assert "Traceback" not in r.output
    shown("cannot write … (…); choose another --out", error_line(r.stderr))


# ------------------------------------------- data.root on a read-only input (/kaggle/input)

def _read_only_copy(small_disk, voc_root) -> Path:
    """A copy of the synthetic VOCdevkit on a tmpfs then remounted read-only, as Kaggle mounts
    /kaggle/input."""
    import ctypes
    import os
    import shutil

    from _tmpfs import _libc

    disk = small_disk(4 * 1024 * 1024)
    shutil.copytree(voc_root, disk / "VOCdevkit")
    ms_rdonly, ms_remount = 1, 32
    if _libc().mount(b"tmpfs", os.fsencode(disk), b"tmpfs", ms_remount | ms_rdonly, None) != 0:
        pytest.skip(f"cannot remount read-only: {os.strerror(ctypes.get_errno())}")
    return disk


@renders("cannot be written (…): the trainer writes its own files there")
def test_data_root_on_a_read_only_input_says_which_keys_to_set(
        small_disk, synth_voc, tiny_config, tmp_path):
    """Kaggle gives the dataset as a read-only /kaggle/input; a user sets data.root there.
    The trainer then ended in a traceback (`OSError: [Errno 30] Read-only file system:
    '/kaggle/input/.../annotations'`): it writes the annotation lines under data.root."""
    from click.testing import CliRunner

    from trainer.cli import cli

    ro = _read_only_copy(small_disk, synth_voc.voc_root)
    cfg = tiny_config(**{"data.root": str(ro), "data.train": "train", "data.val": "val"})
    r = CliRunner().invoke(cli, ["train", "-c", cfg])
    assert r.exit_code == 1, (r.exit_code, r.output, r.exception)
    line = error_line(r.stderr)
    assert line == (
        f"Error: data.root {ro} cannot be written (read-only file system): the trainer writes "
        "its own files there (.drivestage-trainer/: the annotation lines, weights pulled from "
        "Drive; image-cache/ with data.cache=disk); to train from a read-only copy (Kaggle's "
        f"/kaggle/input), set data.voc_root={ro / 'VOCdevkit'} and data.root to a folder you "
        "can write")
    shown("cannot be written (…): the trainer writes its own files there", line)
    assert "Traceback" not in r.output


# ----------------------------------------- a full working disk before the first checkpoint

@renders("could not write the checkpoint of epoch … in …:")
def test_the_first_checkpoint_on_a_full_disk_says_what_to_do(tiny_config, small_disk,
                                                             monkeypatch):
    """The walk's first epoch on a small Kaggle-like disk ended `...: [Errno 28] No space left
    on device; nothing of run R is saved there` and stopped: not what to do."""
    import os

    from test_messages_attack18 import KiB, _fill, _run
    from trainer.callbacks import CSVLogger
    from trainer.config import load_config
    from trainer.errors import SaveError
    from trainer.state import Position

    import tempfile

    disk = small_disk(512 * KiB)
    (disk / "tmp").mkdir()   # (the temporary folder on the same disk: full too)
    monkeypatch.setattr(tempfile, "tempdir", str(disk / "tmp"))
    run = _run(load_config(tiny_config(**{"train.out_dir": str(disk / "logs"), "train.epochs": 1})))
    _fill(disk)
    run.state.pos = pos = Position(1, 2, 0)
    run.state.history = [{"epoch": 1}]
    row = {"epoch": 1, "map50": 0.5}
    with pytest.raises(SaveError) as failed:
        CSVLogger(run.out_dir).on_fit_epoch_end(run, pos, row)
        run.checkpointer.on_fit_epoch_end(run, pos, row)
        run.checkpointer.on_fit_end(run)
    text = error_text(failed.value)
    assert text == (f"Error: could not write the checkpoint of epoch 1 (last.pt, epoch_001.pt, "
                    f"best.pt) in {run.out_dir}: [Errno 28] No space left on device, nor on "
                    f"this machine ([Errno 28] No space left on device); nothing of "
                    f"run {run.state.run} is saved there: free some space and run the same "
                    f"command again (it trains from the start)")
    shown("could not write the checkpoint of epoch … in …:", text)
    assert [n for n in os.listdir(run.out_dir) if n.endswith(".pt")] == []
