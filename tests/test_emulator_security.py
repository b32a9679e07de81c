"""The emulator keeps secrets out of its logs and files, and refuses DNS-rebound requests."""
from __future__ import annotations

import http.client
import json
import logging
import os
import stat
import subprocess
import sys
import urllib.request

import pytest

from drivestage.emulator import Emulator

SECRET = "ya29.secret-token-value"


def raw(emu, method, target, headers=None, body=b""):
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=10)
    conn.request(method, target, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def test_access_token_in_the_url_never_reaches_the_logs(emulator, caplog):
    fid = emulator.add_file("a.bin", b"abc")
    caplog.set_level(logging.DEBUG, logger="drivestage.emulator")
    status, data = raw(emulator, "GET", f"/drive/v2/files/{fid}?alt=media&access_token={SECRET}")
    assert (status, data) == (200, b"abc")
    status, _ = raw(emulator, "GET", f"/drive/v2/about?access_token={SECRET}&key=AIzaKEY",
                    headers={"Authorization": f"Bearer {SECRET}"})
    assert status == 200
    first, second = emulator.requests
    assert first.query["access_token"] == "<redacted>" and first.query["alt"] == "media"
    assert second.query["key"] == "<redacted>"
    assert second.headers["Authorization"] == "Bearer <redacted>"
    over_http = raw(emulator, "GET", "/_emulator/requests")[1].decode()
    assert SECRET not in repr(emulator.requests) and SECRET not in over_http
    assert "AIzaKEY" not in over_http
    assert caplog.records, "the debug log must have seen the requests"
    assert not [r for r in caplog.records if SECRET in r.getMessage()]


def _modes(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = stat.S_IMODE(os.stat(path).st_mode)
    return out


def test_state_files_are_private_and_hold_no_token(tmp_path):
    old = os.umask(0o022)          # the usual umask: without care, files would be 0644
    try:
        data_dir = tmp_path / "drive"
        with Emulator(data_dir=str(data_dir)) as emu:
            fid = emu.add_file("VOC/x.zip", b"zip bytes")
            # A resumable session in flight (its partial file and its database row) and a copy.
            status, _ = raw(emu, "POST", "/upload/drive/v2/files?uploadType=resumable",
                            body=b'{"title": "up.bin"}',
                            headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json",
                                     "X-Upload-Content-Length": "10"})
            assert status == 200
            status, _ = raw(emu, "POST", f"/drive/v2/files/{fid}/copy", body=b"{}",
                            headers={"Authorization": f"Bearer {SECRET}"})
            assert status == 200
            modes = _modes(data_dir)
            for p in modes:
                if not os.path.isdir(data_dir / p):
                    assert SECRET.encode() not in (data_dir / p).read_bytes(), p
        assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
        assert {p for p, m in modes.items() if os.path.isdir(data_dir / p) and m != 0o700} == set()
        files = {p: m for p, m in modes.items() if not os.path.isdir(data_dir / p)}
        assert "state.sqlite3" in files and any(p.startswith("blobs") for p in files)
        assert any(p.startswith("uploads") for p in files)
        assert {p: m for p, m in files.items() if m != 0o600} == {}
    finally:
        os.umask(old)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "10.0.0.1"])
def test_foreign_host_header_is_refused_on_loopback(emulator, host):
    fid = emulator.add_file("a.bin", b"abc")
    for target in (f"/drive/v2/files/{fid}?alt=media", "/_emulator/files"):
        status, data = raw(emulator, "GET", target, headers={"Host": host, "Authorization": "Bearer t"})
        assert status == 403
        err = json.loads(data)["error"]
        assert err["errors"][0]["reason"] == "forbidden" and "loopback" in err["message"]
    assert [r.status for r in emulator.requests] == [403]


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:{port}", "127.0.0.1:{port}", "127.1.2.3", "[::1]:{port}"])
def test_loopback_host_names_are_served(emulator, host):
    status, data = raw(emulator, "GET", "/drive/v2/about",
                       headers={"Host": host.format(port=emulator.port), "Authorization": "Bearer t"})
    assert status == 200 and json.loads(data)["kind"] == "drive#about"


def test_cli_emulator_still_serves_its_own_address():
    proc = subprocess.Popen([sys.executable, "-m", "drivestage", "emulator"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split(" at ")[1].strip()
        with urllib.request.urlopen(url + "_emulator/health", timeout=10) as resp:
            assert json.load(resp)["ok"] is True
        request = urllib.request.Request(url + "_emulator/health", headers={"Host": "attacker.example"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)
        assert err.value.code == 403
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert proc.returncode == 0
