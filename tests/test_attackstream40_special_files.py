"""attackstream40: ``--out`` turned into a node while the export runs (attackcli40 refuses a
device, FIFO or socket named as ``--out``, looked at once, before anything loads).

The export traces the model for seconds (minutes for a big one) and then renames its file into
place; a FIFO, device or socket made at ``--out`` meanwhile (another program's ``mkfifo``, a
``mknod`` by root) was replaced by the graph all the same. It is asked again right before the
rename now: refused, the node left as it is, no temporary file left. (What remains is the
moment between that look and the rename: rename(2) cannot be told to replace regular files
only.) A bind-mounted ``--out`` (``mount --bind``) is one line, exit 1, and the file mounted
there is unharmed.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import stat

import pytest
import torch
from click.testing import CliRunner

from _tmpfs import _libc
from trainer.cli import cli
from trainer.errors import UsageError
from trainer.export import export_onnx
from trainer.model import YoloV4Tiny

# Looked for, not imported: onnx's import is 1.7 s (ml_dtypes), and every worker collects this
# module; the tests import it where they export.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnx") is None,
                                reason="needs the [export] extra (onnx)")


class _MakesFifo(YoloV4Tiny):
    """A model whose first forward (the export's trace) makes a FIFO at ``out``."""

    out = ""

    def forward(self, x):
        if self.out and not os.path.lexists(self.out):
            os.mkfifo(self.out)
        return super().forward(x)


def test_a_fifo_made_at_out_while_the_graph_is_traced_is_not_replaced(tmp_path):
    torch.manual_seed(0)
    model = _MakesFifo(num_classes=2, width=0.25, input_size=64)
    model.out = str(tmp_path / "m.onnx")
    with pytest.raises(UsageError) as refused:
        export_onnx(model, model.out, input_size=64)
    assert str(refused.value) == (
        f"--out {model.out} is a FIFO, not a file: the export would replace it with the "
        "graph; give the .onnx file to write, e.g. yolov4-tiny.onnx")
    assert stat.S_ISFIFO(os.lstat(model.out).st_mode)
    assert os.listdir(tmp_path) == ["m.onnx"]   # (no temporary file left)


def test_a_bind_mounted_out_is_one_line_and_the_mounted_file_is_unharmed(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "w.pth"
    torch.save(YoloV4Tiny(num_classes=2, width=0.25).state_dict(), weights)
    mounted, out = tmp_path / "kept.txt", tmp_path / "m.onnx"
    mounted.write_text("kept\n")
    out.write_text("")
    if _libc().mount(os.fsencode(mounted), os.fsencode(out), None, 4096, None) != 0:  # MS_BIND
        pytest.skip(f"a bind mount needs root: {os.strerror(ctypes.get_errno())}")
    try:
        result = CliRunner().invoke(cli, ["export-onnx", "--weights", str(weights), "--out",
                                          str(out), "--input-size", "64"])
        assert (result.exit_code, result.output.splitlines()[-1]) == (1, (
            f"Error: cannot write {out} ({out}: device or resource busy); choose another --out"))
        assert out.read_text() == "kept\n"
    finally:
        _libc().umount2(os.fsencode(out), 2)
    assert sorted(os.listdir(tmp_path)) == ["kept.txt", "m.onnx", "w.pth"]
    assert mounted.read_text() == "kept\n"


def test_a_fifo_made_at_the_token_file_while_the_user_logs_in_is_not_replaced(
        tmp_path, monkeypatch):
    """``auth login --token-file``: looked at before the address is printed, and again
    before the token is saved; the user's minutes in the browser lie between."""
    import json
    import urllib.parse

    from drivestage.drive import login
    from drivestage.errors import UsageError as DriveUsageError
    from test_auth import TokenServer

    for name in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN", "DRIVESTAGE_CREDENTIALS",
                 "DRIVESTAGE_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    server = TokenServer()
    try:
        secrets_file = tmp_path / "client_secret.json"
        secrets_file.write_text(json.dumps({"installed": {
            "client_id": "cid.apps.example", "client_secret": "csecret",
            "auth_uri": "https://accounts.example/o/oauth2/auth", "token_uri": server.uri,
            "redirect_uris": ["http://localhost"]}}))
        token = str(tmp_path / "token.json")
        printed: list[str] = []

        def browser(prompt: str) -> str:
            url = next(line.strip() for text in printed for line in text.splitlines()
                       if line.strip().startswith("https://accounts.example"))
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
            server.codes["the-code"] = query["code_challenge"]
            os.mkfifo(token)   # (meanwhile)
            return f"http://localhost/?state={query['state']}&code=the-code"

        with pytest.raises(DriveUsageError) as refused:
            login.login(str(secrets_file), token_file=token, ask=browser, say=printed.append)
    finally:
        server.stop()
    assert str(refused.value) == (
        f"--token-file {token} is a FIFO, not a file: the login would replace it with the "
        "token; give the file to save the token in (default ~/.config/drivestage/token.json)")
    assert stat.S_ISFIFO(os.lstat(token).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["client_secret.json", "token.json"]
