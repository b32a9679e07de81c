"""A file named for writing that is a symbolic link: written through, as ``cp`` writes.

``trainer export-onnx --out``, ``drivestage auth login --token-file`` (or
``DRIVESTAGE_TOKEN_FILE``) and the save of a refreshed token (``--credentials FILE``) write a
temporary file and rename it into place. Given a link (a dotfiles manager's
``~/.config/drivestage/token.json``, ``model.onnx`` pointing into a deploy folder), the rename
replaced the link itself with a regular file: the file it led to kept its old bytes, and the
link was gone. Now the temporary file is made beside the link's target and renamed onto it;
the link stays. A link that leads nowhere is refused (exit 2, one line), as ``cp`` refuses to
write through one, before anything is loaded or the user is sent to log in."""
from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from click.testing import CliRunner

from drivestage.cli import cli as drivestage_cli
from drivestage.drive import connect, login
from trainer.cli import cli as trainer_cli
from trainer.model import YoloV4Tiny
from test_auth import FRESH, _token_file, clean_env, emu, token_server  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "w2.pth"
    torch.save(YoloV4Tiny(num_classes=2).state_dict(), path)
    return path


def _linked(tmp_path, name: str, data: bytes = b"old\n"):
    """``out/<name>``, a relative link to ``deploy/<name>`` (a file holding ``data``)."""
    (tmp_path / "deploy").mkdir()
    (tmp_path / "out").mkdir()
    target = tmp_path / "deploy" / name
    target.write_bytes(data)
    link = tmp_path / "out" / name
    link.symlink_to(os.path.join("..", "deploy", name))
    return link, target


def _files(tmp_path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), tmp_path)
                  for d, _, fs in os.walk(tmp_path) for f in fs)


@pytest.mark.slow   # (an ONNX export: 2 s alone, 4-5 s on a loaded machine)
def test_export_onnx_writes_through_a_link_and_keeps_it(weights, tmp_path):
    onnx = pytest.importorskip("onnx")
    link, target = _linked(tmp_path, "model.onnx")
    result = CliRunner().invoke(trainer_cli, ["export-onnx", "--weights", str(weights),
                                              "--out", str(link), "--input-size", "32"])
    assert result.exit_code == 0, result.output
    assert os.readlink(link) == os.path.join("..", "deploy", "model.onnx")   # the link stays
    onnx.checker.check_model(onnx.load(str(target)))                        # the graph is there
    assert _files(tmp_path) == ["deploy/model.onnx", "out/model.onnx"]     # nothing else


def test_export_onnx_to_a_link_that_leads_nowhere_is_refused(weights, tmp_path):
    link = tmp_path / "model.onnx"
    link.symlink_to("gone/model.onnx")
    result = CliRunner().invoke(trainer_cli, ["export-onnx", "--weights", str(weights),
                                              "--out", str(link)])
    assert (result.exit_code, result.output) == (2, (
        f"Error: --out {link} is a link to {tmp_path}/gone/model.onnx, which is not there; "
        "give the file to write, or point the link at one\n"))
    assert os.readlink(link) == "gone/model.onnx" and _files(tmp_path) == ["model.onnx"]


def test_a_console_login_saves_the_token_through_a_link(clean_env, emu, token_server,
                                                        tmp_path):
    link, target = _linked(tmp_path, "token.json")
    secrets = tmp_path / "client_secret.json"
    secrets.write_text(json.dumps({"installed": {
        "client_id": "cid.apps.example", "client_secret": "csecret",
        "auth_uri": "https://accounts.example/o/oauth2/auth", "token_uri": token_server.uri,
        "redirect_uris": ["http://localhost"]}}))
    printed: list[str] = []

    def browser(prompt: str) -> str:
        import urllib.parse

        url = next(line.strip() for text in printed for line in text.splitlines()
                   if line.strip().startswith("https://accounts.example"))
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
        token_server.codes["the-code"] = query["code_challenge"]
        return f"http://localhost/?state={query['state']}&code=the-code"

    assert login.login(str(secrets), token_file=str(link), ask=browser,
                       say=printed.append) == str(link)
    assert link.is_symlink() and json.loads(target.read_text())["token"] == FRESH
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert _files(tmp_path / "deploy") == ["token.json"]


@pytest.mark.parametrize("how", ["option", "variable"])
def test_a_login_to_a_token_file_link_that_leads_nowhere_is_refused_before_it_starts(
        clean_env, tmp_path, monkeypatch, how):
    secrets = tmp_path / "client_secret.json"
    secrets.write_text(json.dumps({"installed": {
        "client_id": "cid.apps.example", "client_secret": "csecret",
        "auth_uri": "https://accounts.example/o/oauth2/auth",
        "token_uri": "https://oauth2.example/token", "redirect_uris": ["http://localhost"]}}))
    link = tmp_path / "token.json"
    link.symlink_to(tmp_path / "gone" / "token.json")
    args = ["auth", "login", "--client-secrets", str(secrets)]
    if how == "option":
        args += ["--token-file", str(link)]
    else:
        monkeypatch.setenv("DRIVESTAGE_TOKEN_FILE", str(link))
    result = CliRunner().invoke(drivestage_cli, args, input="http://localhost/?code=x\n")
    named = "--token-file" if how == "option" else "DRIVESTAGE_TOKEN_FILE"
    assert (result.exit_code, result.output) == (2, (
        f"Error: {named} {link} is a link to {tmp_path}/gone/token.json, which is not there; "
        "give the file to write, or point the link at one\n"))
    assert link.is_symlink() and not os.path.lexists(tmp_path / "gone")


def test_a_refreshed_token_is_saved_through_a_link(clean_env, emu, token_server, tmp_path):
    link, target = _linked(tmp_path, "token.json")
    _token_file(target, token_server.uri, expired=True)
    emu.add_file("data/a.txt", b"hello")
    store = connect(api_root=emu.url, credentials=str(link))
    assert store.resolve("data/a.txt").size == 5
    assert [c["grant_type"] for c in token_server.calls] == ["refresh_token"]
    assert link.is_symlink() and json.loads(target.read_text())["token"] == FRESH
    assert _files(tmp_path / "deploy") == ["token.json"]
