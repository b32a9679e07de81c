"""original25: a first `pull -x` of a local archive reads it once, not twice.

It read the archive whole to hash it (the directory store's md5, when the pull looked the
file up), then once more to extract it: 2.03x its size in bytes read (a 20 GB Kaggle input
went through its mount twice). Now the extraction hashes the bytes it reads
(:mod:`drivestage.hashed_pass`), and nothing is merged into DEST before that md5 and the
original's identity (before and after the read) are checked:

1. a first pull reads the archive about once (zip, tar, tar.gz), a rerun none of it;
2. the original written while it is read, or whose bytes are not those of the md5 it was
   listed with (a lying mount): exit 1, one line saying so, nothing extracted stays;
3. archives the stream cannot follow (truncated, a central directory that lies about its
   members' sizes) fail as before, with the usual messages, and leave nothing behind.

Bytes read are counted by the kernel (``rchar`` of /proc/self/io around an in-process pull,
its threads included), never timed.
"""
from __future__ import annotations

import io
import os
import struct
import tarfile
import zipfile

import pytest

from test_attack22_stage import _tree
from test_messages_walk20 import _drivestage
from test_stage23 import _pull, _rchar, _reads, needs_proc_io

import drivestage.hashed_pass as hashed_pass
from drivestage.localdir import LocalDirStore
from drivestage.stage import pull

def _members(n: int = 6, size: int = 1 << 20) -> dict[str, bytes]:
    return {f"ds/f{i:02d}.bin": os.urandom(size) for i in range(n)}


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for path, data in members.items():
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data,
                        compress_type=method)
    return buf.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 1_600_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _setup(tmp_path, data: bytes, name: str = "voc.zip"):
    (tmp_path / "input").mkdir(exist_ok=True)
    archive = tmp_path / "input" / name
    archive.write_bytes(data)
    return archive, tmp_path / "data"


def _left(dest) -> list[str]:
    """What DEST holds besides drivestage's state folder (its stamps and locks)."""
    return sorted(os.listdir(dest)) if dest.exists() else []


def _one_line(r) -> str:
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    return lines[0]


# ------------------------------------------------------------ 1. read once, a rerun none

@needs_proc_io
@pytest.mark.parametrize("kind", ["zip", "deflated", "tar", "tar.gz"])
def test_a_first_pull_reads_the_archive_once_and_a_rerun_none_of_it(kind, local_state,
                                                                    tmp_path):
    members = _members()
    data = {"zip": lambda: _zip(members), "tar": lambda: _tar(members),
            "deflated": lambda: _zip(members, zipfile.ZIP_DEFLATED),
            "tar.gz": lambda: _tar(members, "w:gz")}[kind]()
    archive, dest = _setup(tmp_path, data, "voc." + kind.replace("deflated", "zip"))
    first = _reads(archive, dest)
    assert first < 1.1, first                            # was 2.03: hashed, then extracted
    assert _tree(dest) == members
    assert _reads(archive, dest) < 0.05                  # "already staged": nothing read
    r = _drivestage("pull", str(archive), str(dest), "-x", "-q", "--json")
    assert r.exit_code == 0 and '"action": "cached"' in r.output, r.output


@needs_proc_io
def test_the_md5_hashed_while_extracting_is_the_file_s_and_says_so(local_state, tmp_path):
    """The result and the stamp carry the md5 of what was read (the listing had none)."""
    import hashlib

    data = _zip(_members(3))
    archive, dest = _setup(tmp_path, data)
    result = pull(str(archive), str(dest), extract=True, quiet=True)
    assert result.md5 == hashlib.md5(data).hexdigest() and result.checksum == "md5"
    assert result.action == "extract" and result.extracted


# ------------------------------------------------ 2. changed while read, a lying mount

def _write_while_read(monkeypatch, archive, at: int, data: bytes) -> None:
    """Another program writes ``data`` at offset ``at`` of the original once the pass has
    read its first block (the bytes already hashed and extracted are the old ones)."""
    real = hashed_pass._Reader._block
    done = []

    def block(self, offset):
        out = real(self, offset)
        if offset > 0 and not done:
            done.append(True)
            with open(archive, "r+b") as fh:
                fh.seek(at)
                fh.write(data)
        return out

    monkeypatch.setattr(hashed_pass._Reader, "_block", block)
    monkeypatch.setattr(hashed_pass, "CHUNK", 64 << 10)   # several blocks for a small zip


def test_an_original_written_while_it_is_read_leaves_nothing_and_says_so(
        local_state, tmp_path, monkeypatch):
    members = _members(4, 256 << 10)
    good = _zip(members)
    archive, dest = _setup(tmp_path, good)
    _write_while_read(monkeypatch, archive, 100, b"X" * 100)   # inside the first member
    r = _pull(archive, dest)
    assert r.exit_code == 1, r.output
    line = _one_line(r)
    assert "changed while it was read" in line and str(archive) in line, line
    assert _left(dest) == [".drivestage"]                 # no member, no temporary folder
    monkeypatch.undo()
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    archive.write_bytes(good)
    assert _pull(archive, dest).exit_code == 0            # the rerun stages it
    assert _tree(dest) == members


class _Lying:
    """An md5 source (a persistent md5 cache) that knows another md5 for the original: a
    mount serving other bytes than those it was hashed from."""

    def __init__(self, md5: str):
        self.md5 = md5

    def get(self, path, st=None):
        return self.md5

    def put(self, path, st, md5, **kwargs):
        pass


def test_bytes_that_are_not_those_of_the_listed_md5_are_not_staged(local_state, tmp_path):
    members = _members(3, 64 << 10)
    archive, dest = _setup(tmp_path, _zip(members))
    store = LocalDirStore(str(archive.parent), md5_cache=_Lying("0" * 32))
    from drivestage.errors import DestChangedError

    with pytest.raises(DestChangedError) as err:
        pull("voc.zip", str(dest), extract=True, quiet=True, store=store)
    text = str(err.value)
    assert "changed while it was read" in text and "0" * 32 in text, text
    assert _left(dest) == [".drivestage"]


# ------------------------------------- 3. archives the stream cannot follow fail as before

@needs_proc_io
def test_a_truncated_zip_fails_in_one_line_and_leaves_nothing(local_state, tmp_path):
    data = _zip(_members(4, 256 << 10))
    archive, dest = _setup(tmp_path, data[:len(data) // 2])
    before = _rchar()
    r = _pull(archive, dest)
    assert (_rchar() - before) / archive.stat().st_size < 2.2
    assert r.exit_code == 1, r.output
    assert "voc.zip" in _one_line(r), r.output
    assert _left(dest) in ([], [".drivestage"])


def test_a_truncated_tar_gz_fails_in_one_line_and_leaves_nothing(local_state, tmp_path):
    data = _tar(_members(4, 256 << 10), "w:gz")
    archive, dest = _setup(tmp_path, data[:len(data) * 2 // 3], "voc.tar.gz")
    r = _pull(archive, dest)
    assert r.exit_code == 1, r.output
    assert "truncated or corrupt" in _one_line(r), r.output
    assert _left(dest) == [".drivestage"]


def _lie_about_size(data: bytes, member: str, size: int) -> bytes:
    """``data`` (a stored zip) whose central directory says ``member`` holds ``size``
    bytes (compressed and not), its local header and bytes unchanged."""
    name = member.encode()
    at = data.index(b"PK\x01\x02", 0)
    while data[at + 46:at + 46 + len(name)] != name:
        at = data.index(b"PK\x01\x02", at + 4)
    return data[:at + 20] + struct.pack("<II", size, size) + data[at + 28:]


@pytest.mark.parametrize("lie", [-1000, +1000])
def test_a_central_directory_that_lies_about_a_size_fails_and_leaves_nothing(
        lie, local_state, tmp_path):
    members = _members(3, 64 << 10)
    data = _lie_about_size(_zip(members), "ds/f01.bin", (64 << 10) + lie)
    archive, dest = _setup(tmp_path, data)
    r = _pull(archive, dest)
    assert r.exit_code == 1, r.output
    line = _one_line(r)
    assert "ds/f01.bin" in line and "voc.zip" in line, line
    assert _left(dest) == [".drivestage"]


# ------------------------------------------- 4. zips of every shape, followed or not

class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors after each member."""

    def __init__(self):
        super().__init__()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.data += b
        return len(b)


def _described(members: dict[str, bytes]) -> bytes:
    out = _Unseekable()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in members.items():
            with zf.open(path, "w") as fh:
                fh.write(data)
    return bytes(out.data)


def _with_link(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in members.items():
            zf.writestr(path, data)
        link = zipfile.ZipInfo("ds/link")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "f00.bin")
    return buf.getvalue()


@needs_proc_io
@pytest.mark.parametrize("shape", ["descriptors", "prefixed", "lzma", "link", "force"])
def test_zips_of_every_shape_are_staged_and_read_once_when_followed(shape, local_state,
                                                                    tmp_path):
    """Data descriptors after the members (a zip written to a pipe) and bytes before the
    first member (a self-extracting zip) are followed in one read; lzma members and links
    (their targets are member data) are hashed, then extracted the usual way: two reads, as
    before. ``--force`` on a staged archive reads it once too."""
    members = _members(4, 256 << 10)
    data = {"descriptors": lambda: _described(members),
            "prefixed": lambda: b"#!/bin/sh\nexit 0\n" * 1000 + _zip(members),
            "lzma": lambda: _zip(members, zipfile.ZIP_LZMA),
            "link": lambda: _with_link(members),
            "force": lambda: _zip(members)}[shape]()
    archive, dest = _setup(tmp_path, data)
    if shape == "force":
        assert _pull(archive, dest).exit_code == 0
    read = _reads(archive, dest, *(["--force"] if shape == "force" else []))
    assert read < (2.2 if shape in ("lzma", "link") else 1.1), read
    tree = _tree(dest)
    if shape == "link":
        assert os.readlink(dest / "ds/link") == "f00.bin"
        tree.pop("ds/link")
    assert tree == members


@needs_proc_io
def test_a_first_pull_cut_while_it_reads_is_finished_by_a_rerun_that_reads_it_once(
        local_state, tmp_path, monkeypatch):
    """A Ctrl-C (a kill alike) in the middle of the read leaves no member and a stamp
    without an md5; the rerun is a first pull again: one read, not a hash and then a read."""
    members = _members(4, 256 << 10)
    archive, dest = _setup(tmp_path, _zip(members))
    real = hashed_pass._Reader._block

    def block(self, offset):
        if offset > 0:
            raise KeyboardInterrupt
        return real(self, offset)

    monkeypatch.setattr(hashed_pass._Reader, "_block", block)
    monkeypatch.setattr(hashed_pass, "CHUNK", 64 << 10)
    r = _pull(archive, dest)
    assert r.exit_code != 0 and _left(dest) == [".drivestage"], r.output
    monkeypatch.undo()
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    assert _reads(archive, dest) < 1.1
    assert _tree(dest) == members


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_a_ctrl_c_at_each_call_of_the_hashed_pass_then_a_rerun(kind, local_state, tmp_path):
    """``pull -x`` of a local archive interrupted (Ctrl-C, in a process that lives on: a
    notebook) at each call into hashed_pass.py in turn (every 2nd by default; all with
    DRIVESTAGE_TEST_SWEEP=all): its threads end, nothing under DEST stays open, no
    temporary folder stays, and the next pull stages exactly the archive."""
    from _sweep import every
    from test_interrupt_commands import _sweep_pulls

    members = {f"set/{i:02d}.bin": os.urandom(3000 + i) for i in range(4)}
    data = _zip(members, zipfile.ZIP_DEFLATED) if kind == "zip" else _tar(members, "w:gz")
    archive, _ = _setup(tmp_path, data, "set." + kind)
    landed = _sweep_pulls(range(1, 500, every(2)), hashed_pass.__file__, tmp_path,
                          lambda dest: pull(str(archive), str(dest), extract=True,
                                            quiet=True), members)
    assert landed >= 3  # (all of them: 77 calls for the zip, 10 for the tar.gz)
