"""`drivestage ls`, `quota` and `auth login` on the command line."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import urllib.parse

import pytest
from click.testing import CliRunner

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
                               "free": 3145728}


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
        proc = subprocess.Popen(
            [sys.executable, "-m", "drivestage", "auth", "login", "--client-secrets",
             str(secrets_file), "--token-file", str(token_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = ""
            while not url:
                line = proc.stderr.readline()
                assert line, "auth login printed no URL"
                url = line.strip() if line.strip().startswith("https://accounts.example") else ""
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
            srv.codes["good"] = query["code_challenge"]
            out, err = proc.communicate(f"http://localhost/?code=good&state={query['state']}\n",
                                        timeout=30)
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
