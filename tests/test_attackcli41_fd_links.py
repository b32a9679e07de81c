"""attackcli41: a path that is a link to an open descriptor, as ``/dev/stdout``,
``/dev/stderr`` and ``/dev/stdin`` are (links to ``/proc/self/fd/N``).

``trainer export-onnx --out /dev/stdout > model.onnx`` (stdout a regular file): the link
resolves to a regular file, so the special-file check let it through, and the export renamed
its graph over the link itself. As root (Colab) that replaced the system's ``/dev/stdout``
with a regular file, and ``model.onnx`` stayed empty. ``--credentials /dev/stdin < token.json``
did the same to ``/dev/stdin`` with the refreshed token, refresh token and client secret.
Here the link is made in the test's folder (never the system's), pointing at a descriptor
this test opened on a regular file, as ``/dev/stdout`` points at fd 1.
"""
from __future__ import annotations

import os

import pytest
import torch
from click.testing import CliRunner

from drivestage.drive import connect
from drivestage.special_files import special_kind
from test_auth import _token_file, clean_env, emu, token_server  # noqa: F401 (fixtures)
from trainer.cli import cli
from trainer.model import YoloV4Tiny


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "w2.pth"
    torch.save(YoloV4Tiny(num_classes=2).state_dict(), path)
    return path


def _fd_link(tmp_path, name: str, fd: int) -> str:
    """``tmp_path/name``, a link to ``/proc/self/fd/<fd>`` as ``/dev/stdout`` is to fd 1."""
    link = tmp_path / name
    link.symlink_to(f"/proc/self/fd/{fd}")
    return str(link)


def test_export_onto_a_link_to_a_descriptor_is_refused(weights, tmp_path):
    fd = os.open(tmp_path / "model.onnx", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        out = _fd_link(tmp_path, "stdout", fd)
        result = CliRunner().invoke(cli, ["export-onnx", "--weights", str(weights),
                                          "--out", out])
    finally:
        os.close(fd)
    assert (result.exit_code, result.output) == (2, (
        f"Error: --out {out} is a link to an open descriptor (/proc/self/fd/{fd}), not a "
        "file: the export would replace it with the graph; give the .onnx file to write, "
        "e.g. yolov4-tiny.onnx\n"))
    assert os.readlink(out) == f"/proc/self/fd/{fd}"   # the link is whole
    assert sorted(os.listdir(tmp_path)) == ["model.onnx", "stdout"]


@pytest.mark.parametrize("path", ["/dev/stdout", "/dev/stderr", "/dev/stdin", "/dev/fd/1",
                                  "/proc/self/fd/2"])
def test_the_system_links_are_descriptors(path):
    """The system's own, read only: whatever fd 0/1/2 are here (a file, a pipe, a tty)."""
    if not os.path.lexists(path.rsplit("/", 1)[0]):
        pytest.skip(f"no {path} here")
    assert special_kind(path) is not None


def test_a_plain_link_to_a_file_is_still_a_file(tmp_path):
    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert special_kind(str(tmp_path / "link")) is None
    assert special_kind(str(tmp_path / "missing")) is None


def test_a_token_read_through_a_descriptor_link_is_not_written_back(
        clean_env, emu, token_server, tmp_path):
    """``--credentials /dev/stdin < token.json``: refreshed, the link is left whole and the
    file it was read from unchanged."""
    src = _token_file(tmp_path / "token.json", token_server.uri, expired=True)
    before = open(src, "rb").read()
    fd = os.open(src, os.O_RDONLY)
    try:
        link = _fd_link(tmp_path, "stdin", fd)
        emu.add_file("data/a.txt", b"hello")
        store = connect(api_root=emu.url, credentials=link)
        assert store.resolve("data/a.txt").size == 5
    finally:
        os.close(fd)
    assert [c["grant_type"] for c in token_server.calls] == ["refresh_token"]
    assert os.readlink(link) == f"/proc/self/fd/{fd}"
    assert open(src, "rb").read() == before
