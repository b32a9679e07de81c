from __future__ import annotations
import io, os, zipfile
import pytest
import _cli

@pytest.fixture
def env(local_state, drive_env, fast_retries):
    return local_state

def _zip(text):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ds/a.txt", text); z.writestr("ds/b.txt", "b")
    return buf.getvalue()

def test_probe_x(emulator, env, tmp_path):
    fid = emulator.add_file("p/set.zip", _zip("aaa"))
    emulator.set_checksums(fid, md5=None, sha1=None)
    d = tmp_path / "d"
    for i in range(2):
        code, _, err = _cli.run("pull", "-x", "drive:p/set.zip", str(d))
        print(i, code, err[-400:])
    os.remove(d / "ds" / "b.txt")
    code, _, err = _cli.run("pull", "-x", "drive:p/set.zip", str(d))
    print("repair", code, err[-400:])
    code, _, err = _cli.run("pull", "-x", "drive:p", str(d / "f"))
    print("folder", code, err[-400:])
    code, _, err = _cli.run("pull", "-x", "drive:p", str(d / "f"))
    print("folder2", code, err[-400:])

def test_probe_forced_md5(emulator, env, tmp_path, monkeypatch):
    fid = emulator.add_file("p/a.bin", b"x" * 100)
    emulator.set_checksums(fid, md5=None, sha1=None)
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "md5")
    code, _, err = _cli.run("pull", "drive:p/a.bin", str(tmp_path / "d"))
    print("forced", code, err[-400:])

def test_probe_lying_sha(emulator, env, tmp_path):
    fid = emulator.add_file("p/a.bin", b"x" * 100)
    emulator.set_checksums(fid, md5=None, sha1=None, sha256="ab" * 32)
    code, _, err = _cli.run("pull", "drive:p/a.bin", str(tmp_path / "d"))
    print("lying", code, err[-600:], os.listdir(tmp_path / "d") if (tmp_path / "d").exists() else None)
    emulator.set_checksums(fid, sha256="zz")
    code, _, err = _cli.run("pull", "drive:p/a.bin", str(tmp_path / "e"))
    print("malformed", code, err[-600:])
