"""``trainer export-onnx --out`` naming what is no regular file (attackcli40).

The export writes a temporary file beside ``--out`` and renames it into place. Given
``--out /dev/null`` (a dry run, one would think) by root, as Colab runs, it replaced the
system's ``/dev/null`` with the ONNX graph, a regular file: every program's
``> /dev/null`` then wrote into it (found by replacing ``/dev/full`` here, restored with
mknod). A FIFO (``--out >(gzip > m.onnx.gz)``) or ``/dev/stdout`` (a link, replaced by a file)
likewise. Refused now, exit 2, before anything is loaded; the node is left as it was.
"""
from __future__ import annotations

import os
import stat

import pytest
import torch
from click.testing import CliRunner

from trainer.cli import cli
from trainer.export import export_onnx
from trainer.errors import UsageError
from trainer.model import YoloV4Tiny
from _nodes import special_node


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "w2.pth"
    torch.save(YoloV4Tiny(num_classes=2).state_dict(), path)
    return path


def _node(tmp_path, kind: str) -> str:
    return special_node(tmp_path, kind, ".onnx")


@pytest.mark.parametrize("kind, what", [("fifo", "a FIFO"), ("device", "a device")])
def test_export_onto_a_special_file_is_refused(weights, tmp_path, kind, what):
    out = _node(tmp_path, kind)
    mode = os.lstat(out).st_mode
    result = CliRunner().invoke(cli, ["export-onnx", "--weights", str(weights), "--out", out])
    assert (result.exit_code, result.output) == (2, (
        f"Error: --out {out} is {what}, not a file: the export would replace it with the "
        "graph; give the .onnx file to write, e.g. yolov4-tiny.onnx\n"))
    assert os.lstat(out).st_mode == mode
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(out)]


def test_export_through_a_link_to_a_special_file_is_refused(weights, tmp_path):
    """``--out /dev/stdout``: a link to the process's output (here: to a FIFO)."""
    target = _node(tmp_path, "fifo")
    link = tmp_path / "stdout"
    link.symlink_to(target)
    result = CliRunner().invoke(cli, ["export-onnx", "--weights", str(weights), "--out",
                                      str(link)])
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: --out {link} is a FIFO, not a file")
    assert link.is_symlink() and stat.S_ISFIFO(os.stat(link).st_mode)


def test_the_library_refuses_it_too(tmp_path):
    out = _node(tmp_path, "fifo")
    with pytest.raises(UsageError, match="is a FIFO, not a file"):
        export_onnx(YoloV4Tiny(num_classes=2), out, input_size=64)
    assert stat.S_ISFIFO(os.lstat(out).st_mode)
