"""Attacks on the checksum a pull verifies with (drivestage.checksums): a server that reports
malformed or lying checksums, preferences that change between a run and its resume, bytes
changed on disk between runs, and the emulator's SHA-1 / SHA-256 however content is stored."""
from __future__ import annotations

import hashlib
import json
import os

import pytest
from click.testing import CliRunner

from drivestage.cli import cli

KiB = 1024


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def media_gets(emulator) -> int:
    return sum(1 for r in emulator.requests if r.kind == "media.download")


# --------------------------------------------------------------------------- malformed values

@pytest.mark.parametrize("wanted", ["sha256", "auto"])
@pytest.mark.parametrize("bad", ["zz" * 32, "0" * 63, "0" * 65, " " + "0" * 63, "",
                                 "\t", "0" * 32])
def test_a_sha256_that_is_not_64_hex_digits_is_no_sha256(emulator, drive_env, tmp_path,
                                                         monkeypatch, wanted, bad):
    """Not a SHA-256 at all: the file is verified with its md5, downloaded once."""
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", wanted)
    data = os.urandom(100_000)
    fid = emulator.add_file("x.bin", data)
    emulator.set_checksums(fid, sha256=bad)
    emulator.clear_requests()
    code, out, err = run("pull", "drive:x.bin", str(tmp_path), "-q", "--json")
    assert code == 0, err
    assert json.loads(out)["checksum"] == "md5"
    assert json.loads(out)["md5"] == md5(data)
    assert (tmp_path / "x.bin").read_bytes() == data
    assert media_gets(emulator) == 1


def test_an_upper_case_sha256_is_drives_sha256(emulator, drive_env, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "sha256")
    data = os.urandom(100_000)
    fid = emulator.add_file("x.bin", data)
    emulator.set_checksums(fid, sha256=sha256(data).upper())
    code, out, err = run("pull", "drive:x.bin", str(tmp_path), "-q", "--json")
    assert code == 0, err
    assert json.loads(out)["checksum"] == "sha256"
    emulator.set_checksums(fid, sha256=sha256(b"other").upper())  # and it is compared
    code, out, err = run("pull", "drive:x.bin", str(tmp_path / "b"), "-q")
    assert code == 1 and "(expected sha256 " in err


@pytest.mark.parametrize("bad", ["", "zz" * 16, "0" * 31, "0" * 64])
@pytest.mark.parametrize("sha", [True, False])
def test_an_md5_that_is_not_32_hex_digits_is_malformed_metadata(emulator, drive_env, fast_retries,
                                                                tmp_path,
                                                                monkeypatch, bad, sha):
    """Drive's md5 names the version (stamps, partial files): one that is not an md5 is
    refused before a byte is downloaded (never a download that nothing verified)."""
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "md5")
    data = os.urandom(50_000)
    fid = emulator.add_file("x.bin", data)
    emulator.store.update(fid, md5=bad)
    if not sha:
        emulator.set_checksums(fid, sha256=None)
    emulator.clear_requests()
    code, out, err = run("pull", "drive:x.bin", str(tmp_path / "d"), "-q")
    assert code == 1
    assert err.splitlines()[-1].endswith(
        f": the server answered malformed metadata for item {fid!r} "
        f"(md5Checksum {repr(bad)[:60]}); is --api-root / DRIVESTAGE_API_ROOT a Drive API?")
    assert media_gets(emulator) == 0
    assert not (tmp_path / "d" / "x.bin").exists()


@pytest.mark.parametrize("bad", [123, ["0" * 64], {"sha256": "0" * 64}])
def test_a_sha256_that_is_not_a_string_is_malformed_metadata(emulator, drive_env, tmp_path,
                                                             bad):
    data = os.urandom(1000)
    fid = emulator.add_file("x.bin", data)
    emulator.set_checksums(fid, sha256=bad)
    emulator.clear_requests()
    code, out, err = run("pull", "drive:x.bin", str(tmp_path / "d"), "-q")
    assert code == 1
    assert f"malformed metadata for item {fid!r} (sha256Checksum " in err.splitlines()[-1]
    assert media_gets(emulator) == 0


def test_choose_never_leaves_offered_bytes_unverified(monkeypatch):
    """Any store: values that are no checksum are passed over, but when nothing else is left
    the md5 is still compared (a mismatch, never a download nothing verified)."""
    from dataclasses import replace

    from drivestage import checksums
    from drivestage.store import RemoteEntry

    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "sha256")
    good = RemoteEntry(id="X", name="x", is_dir=False, size=1, md5="A" * 32, sha256="B" * 64)
    assert checksums.choose(good) == checksums.Checksum("sha256", "b" * 64)
    assert checksums.choose(replace(good, sha256="b" * 63)) == checksums.Checksum("md5", "a" * 32)
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "md5")
    assert checksums.choose(replace(good, md5="")) == checksums.Checksum("sha256", "b" * 64)
    assert checksums.choose(replace(good, md5="", sha256=None)) == checksums.Checksum("md5", "")
    assert checksums.choose(replace(good, md5=None, sha256="zz")) == \
        checksums.Checksum("sha256", "zz")
    assert checksums.choose(replace(good, md5=None, sha256=None)) is None
