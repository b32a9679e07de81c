"""A refreshed token saved through links (special_files.through_links) where the chain is
more than one link and its end is on another file system (a dotfiles link to a link into a
tmpfs, or a mounted secrets folder): the temporary file is made beside the end, on its file
system (a rename across file systems fails, EXDEV), the end gets the token, every link
stays, and no temporary file is left on either side."""
from __future__ import annotations

import json
import os
import stat

import pytest

from drivestage.drive import connect

from _tmpfs import small_disk  # noqa: F401 (fixture)
from test_auth import FRESH, _token_file, clean_env, emu, token_server  # noqa: F401 (fixtures)


def _files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


def test_a_refreshed_token_is_saved_through_a_chain_into_another_file_system(
        clean_env, emu, token_server, tmp_path, small_disk):  # noqa: F811
    secrets = small_disk(256 << 10)
    end = secrets / "token.json"
    _token_file(end, token_server.uri, expired=True)
    (tmp_path / "dots").mkdir()
    middle = tmp_path / "dots" / "token.json"
    middle.symlink_to(end)                       # absolute, into the tmpfs
    link = tmp_path / "token.json"
    link.symlink_to(os.path.join("dots", "token.json"))   # relative, to the link above
    assert os.stat(tmp_path).st_dev != os.stat(secrets).st_dev
    emu.add_file("data/a.txt", b"hello")
    store = connect(api_root=emu.url, credentials=str(link))
    assert store.resolve("data/a.txt").size == 5
    assert [c["grant_type"] for c in token_server.calls] == ["refresh_token"]
    assert link.is_symlink() and middle.is_symlink()
    assert json.loads(end.read_text())["token"] == FRESH
    assert stat.S_IMODE(end.stat().st_mode) == 0o600
    assert _files(secrets) == ["token.json"]
    assert [f for f in _files(tmp_path) if not f.startswith(("disk", "drive-data"))] == [
        "dots/token.json", "token.json"]   # (the two links: nothing beside them)


@pytest.mark.slow   # (an ONNX export: 2 s alone, 4-5 s on a loaded machine)
def test_an_out_link_retargeted_while_the_graph_is_traced_gets_the_graph_at_its_new_end(
        tmp_path, small_disk):  # noqa: F811
    """``model.onnx -> v1/model.onnx`` flipped to ``v2/model.onnx`` (on another file system)
    by a deploy tool while the export traces: the graph was renamed onto v1's file, where the
    link no longer led, and ``model.onnx`` still read v2's old bytes."""
    onnx = pytest.importorskip("onnx")
    import torch

    from trainer.export import export_onnx
    from trainer.model import YoloV4Tiny

    (tmp_path / "v1").mkdir()
    v1 = tmp_path / "v1" / "model.onnx"
    v1.write_bytes(b"v1\n")
    v2 = small_disk(64 << 20) / "model.onnx"
    v2.write_bytes(b"v2\n")
    link = tmp_path / "model.onnx"
    link.symlink_to(os.path.join("v1", "model.onnx"))

    class Flipping(YoloV4Tiny):
        def forward(self, x):   # (traced once: the flip lands between the check and the rename)
            if os.readlink(link) != str(v2):
                link.unlink()
                link.symlink_to(v2)
            return super().forward(x)

    torch.manual_seed(0)
    export_onnx(Flipping(num_classes=2).eval(), str(link), input_size=32)
    assert os.readlink(link) == str(v2)
    onnx.checker.check_model(onnx.load(str(link)))   # what the link leads to: the graph
    assert v1.read_bytes() == b"v1\n"                # the old end as it was
    assert sorted(os.listdir(v2.parent)) == ["model.onnx"]
    assert sorted(os.listdir(tmp_path / "v1")) == ["model.onnx"]
