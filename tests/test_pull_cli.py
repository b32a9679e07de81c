"""`drivestage ls`, `quota` and `auth login` on the command line."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import urllib.parse

import pytest
from click.testing import CliRunner

from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)
from drivestage.cli import cli


def run(*args, input=None):
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_ls_folder_and_file(emulator, drive_env):
    emulator.add_file("VOC/b.zip", b"bb")
    emulator.add_file("VOC/a.txt", b"a")
    emulator.add_folder("VOC/sub")
    code, out, err = run("ls", "drive:VOC")
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[-1] for line in lines] == ["sub/", "a.txt", "b.zip"]
    assert lines[2].split()[:2] == ["2", hashlib.md5(b"bb").hexdigest()]
    code, out, err = run("ls", "drive:VOC/b.zip", "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["name"], r["size"], r["is_dir"]) for r in rows] == \
        [("b.zip", 2, False)]
    assert rows[0]["modified"].endswith("Z")
    code, out, err = run("ls", "drive:VOC/missing")
    assert code == 1 and err.startswith("Error: drive:VOC/missing not found")


def test_ls_root_defaults(emulator, drive_env):
    emulator.add_file("top.bin", b"t")
    code, out, err = run("ls")
    assert code == 0 and out.split()[-1] == "top.bin"


def test_quota(emulator_factory, tmp_path, monkeypatch):
    emu = emulator_factory(quota_bytes=4 * 1024 * 1024, token="t")
    emu.add_file("a.bin", os.urandom(1024 * 1024))
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "t")
    code, out, err = run("quota", "--api-root", emu.url)
    assert code == 0, err
    assert out.strip() == "used 1.0 MiB of 4.0 MiB (25%), 0 B in the trash, 3.0 MiB free"
    code, out, err = run("quota", "--api-root", emu.url, "--json")
    assert json.loads(out) == {"used": 1048576, "total": 4194304, "trash": 0,
                               "free": 3145728, "other": 0}


def test_no_credentials_message(tmp_path, monkeypatch):
    for name in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN", "DRIVESTAGE_CREDENTIALS",
                 "DRIVESTAGE_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    code, out, err = run("quota")
    assert code == 1 and err.startswith("Error: no Google Drive credentials found")
    assert "drivestage auth login" in err


def test_auth_login_console(tmp_path, monkeypatch):
    from test_auth import TokenServer

    srv = TokenServer()
    try:
        secrets_file = tmp_path / "client.json"
        secrets_file.write_text(json.dumps({"installed": {
            "client_id": "cid", "client_secret": "cs", "token_uri": srv.uri,
            "auth_uri": "https://accounts.example/auth"}}))
        srv.codes["abc"] = None  # unknown challenge: the exchange is refused
        token_file = tmp_path / "tok" / "token.json"
        code, out, err = run("auth", "login", "--client-secrets", str(secrets_file),
                             "--token-file", str(token_file), input="abc\n")
        assert code == 1 and "login was refused" in err
        assert "https://accounts.example/auth?" in err and not token_file.exists()
        # A real exchange, as a user does it: read the printed URL, paste the redirect.
        proc = cli_server().popen(
            ["auth", "login", "--client-secrets", str(secrets_file), "--token-file",
             str(token_file)], stdin=PIPE, stdout=PIPE, stderr=PIPE, text=True)
        try:
            url = ""
            while not url:
                line = proc.stderr.readline()
                assert line, "auth login printed no URL"
                url = line.strip() if line.strip().startswith("https://accounts.example") else ""
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
            srv.codes["good"] = query["code_challenge"]
            assert proc.stdin is not None
            proc.stdin.write(f"http://localhost/?code=good&state={query['state']}\n")
            out, err = proc.communicate(timeout=30)   # (the pasted line sent, stdin closed)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        assert json.loads(token_file.read_text())["refresh_token"] == "good-refresh"
        assert "good-refresh" not in out + err and "fresh-access-token" not in out + err
        assert f"Saved the token to {token_file}" in err
    finally:
        srv.stop()


HOSTILE = "\x1b[2J\x1b]0;owned\x07evil\u202e\n.txt"
SHOWN = "\\x1b[2J\\x1b]0;owned\\x07evil\\u202e\\x0a.txt"


def _no_controls(text):
    return not any(c in text for c in "\x1b\x07\u202e\r") and "\x0a.txt" not in text


def test_ls_escapes_control_characters_in_drive_titles(emulator, drive_env):
    emulator.add_file(f"VOC/{HOSTILE}", b"x")
    emulator.add_folder(f"VOC/{HOSTILE}-dir")
    code, out, err = run("ls", "drive:VOC")
    assert code == 0, err
    assert _no_controls(out) and out.count("\n") == 2
    assert out.splitlines()[0].endswith(f"{SHOWN}-dir/") and out.splitlines()[1].endswith(SHOWN)
    code, out, err = run("ls", "drive:VOC", "--json")  # machine output keeps the exact name
    assert HOSTILE in {row["name"] for row in json.loads(out)}


def test_pull_and_prune_messages_escape_drive_titles(emulator, drive_env, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    emulator.add_file(f"VOC/{HOSTILE}", b"", mime_type="application/vnd.google-apps.document")
    emulator.add_file("VOC/ok.bin", b"ok")
    code, out, err = run("pull", "-q", "drive:VOC", str(tmp_path / "d"))  # a warning names it
    assert code == 0 and SHOWN in err and _no_controls(err), err
    gone = emulator.add_file("x/old.zip", b"old", owner="t@school.edu", shared_with_me=True)
    emulator.add_shortcut(f"VOC/{HOSTILE}.zip", gone)
    emulator.unshare(gone)
    code, out, err = run("pull", "-q", "drive:VOC", str(tmp_path / "d"))  # an error names it
    assert code == 1 and SHOWN in err and _no_controls(err), err
    for i in (1, 2):
        emulator.add_file(f"run/epoch_00{i}{HOSTILE}.pt", b"c")
    code, out, err = run("prune", "drive:run", "--keep-last", "1", "--dry-run")
    assert code == 0 and SHOWN in out and _no_controls(out + err), out + err


def test_progress_bar_labels_escape_drive_titles(capsys):
    from drivestage.stage import tqdm_progress

    update = tqdm_progress(HOSTILE, 10, 0)
    update(10)
    err = capsys.readouterr().err
    assert "\\x1b[2J" in err and "\x07" not in err and "\u202e" not in err
