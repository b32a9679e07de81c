"""attackpull34: a pull names (and its stamp keeps) the checksum that verified the bytes.

A server whose ``md5Checksum`` lied while its ``sha256Checksum`` was right: the pull verified
the bytes by SHA-256 (the faster one here, or ``DRIVESTAGE_CHECKSUM=sha256``), then said
``downloaded and verified (…, md5 000…)`` and ``already there, md5 verified`` - an md5 never
checked - and its stamp kept only that md5, so ``move_staged`` found the copy's bytes "not
those staged" and left it (attackpull33's item 6).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile

import pytest

import drivestage
from _cli import run
from drivestage import stamps

LIE = "0" * 32


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ds/a.txt", b"hello")
    return buf.getvalue()


def _line(err: str) -> str:
    """The summary line, without its seconds (nor the progress bars' clearing before it)."""
    line = [ln for ln in err.splitlines() if " -> " in ln][-1]
    return re.sub(r", [0-9.]+s\)$", "", re.split(r"\r|\x1b\[A", line)[-1])


@pytest.mark.parametrize("there", [False, True], ids=["downloaded", "found-there"])
def test_a_copy_verified_by_sha256_is_said_and_stamped_so(emulator, drive_env, local_state,
                                                          tmp_path, monkeypatch, there):
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "sha256")
    data = _zip()
    sha = hashlib.sha256(data).hexdigest()
    fid = emulator.add_file("F/set.zip", data)
    emulator.set_checksums(fid, md5=LIE)
    dest = tmp_path / "d"
    if there:   # a copy put there by hand: hashed, adopted
        dest.mkdir()
        (dest / "set.zip").write_bytes(data)
    where = f"drive:F/set.zip -> {dest / 'set.zip'}"

    code, _, err = run("pull", "drive:F/set.zip", str(dest), "-x")

    assert code == 0, err
    said = "already there, sha256 verified" if there else "downloaded and verified"
    assert _line(err) == f"{where}: {said} ({len(data)} B, sha256 {sha}, 1 member extracted"
    [stamp] = stamps.of(str(dest), "set.zip")
    assert (stamp["md5"], stamp["sha256"]) == (LIE, sha)   # Drive's name of it, what verified
    code, out, err = run("pull", "drive:F/set.zip", str(dest), "-x", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert (got["action"], got["md5"], got["sha256"]) == ("cached", LIE, sha)
    code, _, err = run("pull", "drive:F/set.zip", str(dest), "-x")
    assert _line(err) == f"{where}: already staged ({len(data)} B, sha256 {sha}, " \
        "1 member already staged"


def test_a_copy_verified_by_md5_names_its_md5_alone(emulator, drive_env, local_state,
                                                    tmp_path, monkeypatch):
    """The other way round (a SHA-256 that lies, the md5 chosen): as before."""
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "md5")
    data = _zip()
    fid = emulator.add_file("F/set.zip", data)
    emulator.set_checksums(fid, sha256="f" * 64)
    dest = tmp_path / "d"
    code, _, err = run("pull", "drive:F/set.zip", str(dest), "-x")
    assert code == 0, err
    assert _line(err) == (f"drive:F/set.zip -> {dest / 'set.zip'}: downloaded and verified "
                          f"({len(data)} B, md5 {hashlib.md5(data).hexdigest()}, "
                          "1 member extracted")
    [stamp] = stamps.of(str(dest), "set.zip")
    assert "sha256" not in stamp


def test_a_copy_verified_by_sha256_is_moved_by_it(emulator, drive_env, local_state, tmp_path,
                                                  monkeypatch):
    """``move_staged`` checks a copy by what verified it: by the lying md5, the trainer's
    weights stayed in the dataset's tree and were downloaded again into the new folder."""
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "sha256")
    src = "drive:Models/w.pth"
    data = os.urandom(20_000)
    fid = emulator.add_file("Models/w.pth", data)
    emulator.set_checksums(fid, md5=LIE)
    old, new = tmp_path / "old", tmp_path / "new"
    drivestage.pull(src, str(old), quiet=True, folders=False)

    done = drivestage.move_staged(str(old), str(new), only=[src])

    assert done.left == [] and done.moved == [(str(old / "w.pth"), str(new / "w.pth"))]
    emulator.clear_requests()
    res = drivestage.pull(src, str(new), quiet=True, folders=False)
    assert (res.action, res.fetched, len(emulator.requests)) == ("cached", 0, 1)
    assert (new / "w.pth").read_bytes() == data
