"""Devices and FIFOs named where drivestage writes (attackcli40).

- ``drivestage auth login --token-file /dev/null`` (or ``DRIVESTAGE_TOKEN_FILE=/dev/null``,
  "do not keep it"), run as root as Colab runs, replaced the system's /dev/null with the
  token, a regular file, once the user had logged in. Refused now before the login starts
  (exit 2, no address printed); the node is left as it was.
- ``drivestage push logs /dev/null`` said to remove the file /dev/null.
"""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from drivestage.cli import cli
from _nodes import special_node


@pytest.fixture
def secrets_file(tmp_path, monkeypatch):
    for name in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN", "DRIVESTAGE_CREDENTIALS",
                 "DRIVESTAGE_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "client_secret.json"
    path.write_text(json.dumps({"installed": {
        "client_id": "cid.apps.example", "client_secret": "csecret",
        "auth_uri": "https://accounts.example/o/oauth2/auth",
        "token_uri": "https://oauth2.example/token", "redirect_uris": ["http://localhost"]}}))
    return str(path)


def _node(tmp_path, kind: str) -> str:
    return special_node(tmp_path, kind, ".json")


@pytest.mark.parametrize("kind, what", [("fifo", "a FIFO"), ("device", "a device")])
@pytest.mark.parametrize("how", ["option", "variable"])
def test_a_token_file_that_is_a_node_is_refused_before_the_login(secrets_file, tmp_path,
                                                                  monkeypatch, kind, what, how):
    node = _node(tmp_path, kind)
    mode = os.lstat(node).st_mode
    args = ["auth", "login", "--client-secrets", secrets_file]
    if how == "option":
        args += ["--token-file", node]
    else:
        monkeypatch.setenv("DRIVESTAGE_TOKEN_FILE", node)
    result = CliRunner().invoke(cli, args, input="http://localhost/?code=x\n")
    named = "--token-file" if how == "option" else "DRIVESTAGE_TOKEN_FILE"
    assert (result.exit_code, result.output) == (2, (
        f"Error: {named} {node} is {what}, not a file: the login would replace it with the "
        "token; give the file to save the token in (default "
        "~/.config/drivestage/token.json)\n"))
    assert os.lstat(node).st_mode == mode


@pytest.mark.parametrize("kind, what", [("fifo", "a FIFO"), ("device", "a device")])
def test_a_push_into_a_node_does_not_say_remove_it(tmp_path, kind, what):
    """``drivestage push logs /dev/null``: it said ``/dev/null is a file, not a folder;
    choose another path or remove the file`` (a device, which root can remove)."""
    from _forkcli import cli_server

    node = _node(tmp_path, kind)
    src = tmp_path / "logs"
    src.mkdir()
    (src / "a.txt").write_text("a")
    done = cli_server().run(["push", str(src), node], timeout=60, text=True,
                            env={**os.environ, "DRIVESTAGE_STATE_DIR": str(tmp_path / "s")})
    assert (done.returncode, done.stderr) == (
        2, f"Error: {node} is {what}, not a folder; choose another path\n")
