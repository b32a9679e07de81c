"""docs/troubleshooting.md, "Archives": each message made to happen (see tests/_messages.py).

Every refusal here is a real ``drivestage pull --extract`` of an archive on the emulator; the
limits of the two bombs are lowered so that small archives pass them.
"""
from __future__ import annotations

import io
import os
import shutil
import stat
import struct
import tarfile
import zipfile

import pytest
from click.testing import CliRunner

from _archives import a_tgz, a_zip
from _messages import renders, shown
from drivestage.cli import cli

LINK, DEVICE = tarfile.SYMTYPE, tarfile.CHRTYPE


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI on the emulator, retries in milliseconds."""


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "data"


def pull(*args: str) -> tuple[int, str]:
    """``drivestage pull ARGS -x -q`` in this process: its exit code and its Error: line."""
    result = CliRunner().invoke(cli, ["pull", *args, "-x", "-q"])
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), (result.stderr, result.exception)
    return result.exit_code, lines[-1]


def a_tar(members: list[tuple]) -> bytes:
    """A tar of ``(name, bytes)`` files, ``(name, None)`` folders and ``(name, type, target)``
    links or special members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for m in members:
            info = tarfile.TarInfo(m[0])
            if len(m) == 3:
                info.type, info.linkname = m[1], m[2]
                tf.addfile(info)
            elif m[1] is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def listing(folder) -> list[str]:
    """What a folder holds, relative paths, drivestage's state folder left out."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".drivestage"]
        out += [os.path.relpath(os.path.join(root, n), folder) for n in dirs + files]
    return sorted(out)


# ------------------------------------------------------------------ names that leave DEST

@renders("could write outside the destination … (zip-slip); refusing the archive")
def test_a_member_that_climbs_out(emulator, dest):
    emulator.add_file("a.zip", a_zip({"ok.txt": b"fine", "../../evil.txt": b"owned"}))
    code, line = pull("drive:a.zip", str(dest))
    assert code == 1
    shown("could write outside the destination … (zip-slip); refusing the archive", line)
    assert listing(dest) == ["a.zip"] and not (dest.parent / "evil.txt").exists()


@renders("has an absolute path; refusing to extract")
def test_a_member_with_an_absolute_path(emulator, dest):
    emulator.add_file("a.tar", a_tar([("ok.txt", b"fine"), ("/etc/evil", b"owned")]))
    code, line = pull("drive:a.tar", str(dest))
    assert code == 1
    shown("has an absolute path; refusing to extract", line)
    assert listing(dest) == ["a.tar"]


@renders("resolves outside the destination … refusing the archive")
def test_a_link_through_a_link_of_dest_that_leaves_it(emulator, dest, tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.txt").write_bytes(b"secret")
    dest.mkdir()
    os.symlink("../outside", dest / "ext")  # the user's own link
    emulator.add_file("l.tar", a_tar([("l", LINK, "ext/secret.txt")]))
    code, line = pull("drive:l.tar", str(dest))
    assert code == 1
    shown("resolves outside the destination … refusing the archive", line)
    assert f"through {dest / 'ext'}" in line
    assert listing(dest) == ["ext", "l.tar"]


@renders("goes back up ('..') after entering a folder")
def test_a_link_target_that_climbs_after_a_name(emulator, dest):
    emulator.add_file("d.tar", a_tar([("d", None), ("esc", LINK, "d/..")]))
    code, line = pull("drive:d.tar", str(dest))
    assert code == 1
    shown("goes back up ('..') after entering a folder", line)
    assert listing(dest) == ["d.tar"]


@renders("already in the destination would resolve outside it; refusing the archive")
def test_a_link_of_dest_the_archive_would_lead_outside(emulator, dest):
    dest.mkdir()
    os.symlink("d/up/..", dest / "esc")  # inside DEST today: d/up is no link yet
    emulator.add_file("up.tar", a_tar([("d", None), ("d/up", LINK, "..")]))
    code, line = pull("drive:up.tar", str(dest))
    assert code == 1
    shown("already in the destination would resolve outside it; refusing the archive", line)
    assert str(dest / "esc") in line
    assert listing(dest) == ["esc", "up.tar"]


# ------------------------------------------------------------------ names drivestage needs

@renders("a file staged from Drive (the archive itself or another download)")
def test_a_member_of_the_archives_own_name(emulator, dest):
    blob = a_zip({"set.zip": b"not the archive", "ds/a.txt": b"a"})
    emulator.add_file("d/set.zip", blob)
    code, line = pull("drive:d/set.zip", str(dest))
    assert code == 1
    shown("a file staged from Drive (the archive itself or another download)", line)
    assert (dest / "set.zip").read_bytes() == blob and listing(dest) == ["set.zip"]


@renders("which drivestage keeps for its own state")
def test_a_member_in_drivestages_state_folder(emulator, dest):
    emulator.add_file("f.zip", a_zip({"ok.txt": b"1", ".drivestage/f.zip.json": b"{}"}))
    code, line = pull("drive:f.zip", str(dest))
    assert code == 1
    shown("which drivestage keeps for its own state", line)
    assert listing(dest) == ["f.zip"]


@renders("-byte name; … bytes: shorten it in the archive")
def test_a_member_name_longer_than_file_systems_allow(emulator, dest):
    emulator.add_file("long.zip", a_zip({"ds/" + "n" * 300: b"x"}))
    code, line = pull("drive:long.zip", str(dest))
    assert code == 1
    shown("-byte name; … bytes: shorten it in the archive", line)
    assert "a 300-byte name; file systems allow 255 bytes" in line
    assert listing(dest) == ["long.zip"]


# ------------------------------------------------------------------ DEST changing under it

class _Racing:
    """``os`` as the merge sees it while another program keeps making ``DEST/<name>``: each
    time the merge has looked at the path (and found nothing), the other program creates a
    folder there with a file in it; before the merge looks again, it takes it away."""

    def __init__(self, dest, name: str):
        self.dest, self.name = str(dest), name

    def __getattr__(self, attr: str):
        return getattr(os, attr)

    def lstat(self, path, *, dir_fd=None, **kw):
        theirs = os.path.join(self.dest, self.name)
        in_dest = path == self.name and dir_fd is not None and \
            os.path.samestat(os.fstat(dir_fd), os.stat(self.dest))
        if in_dest:
            shutil.rmtree(theirs, ignore_errors=True)
        try:
            return os.lstat(path, dir_fd=dir_fd, **kw)
        finally:
            if in_dest:
                os.makedirs(theirs, exist_ok=True)
                with open(os.path.join(theirs, "theirs.txt"), "wb") as fh:
                    fh.write(b"another program's")


@renders("kept changing while … was moved into place; is another program writing there?")
def test_a_path_another_program_keeps_replacing(emulator, dest, monkeypatch):
    from drivestage.extract import merging

    emulator.add_file("ds.zip", a_zip({"ds/a.txt": b"a"}))
    monkeypatch.setattr(merging, "os", _Racing(dest, "ds"))
    code, line = pull("drive:ds.zip", str(dest))
    assert code == 1
    shown("kept changing while … was moved into place; is another program writing there?",
          line)
    assert f"{dest / 'ds'} kept changing while ds.zip" in line
    assert not (dest / "ds/a.txt").exists()


# ------------------------------------------------------------------ what an archive holds

@renders("is a device file or")
def test_a_device_member(emulator, dest):
    emulator.add_file("dev.tar", a_tar([("ok.txt", b"1"), ("dev", DEVICE, "")]))
    code, line = pull("drive:dev.tar", str(dest))
    assert code == 1
    shown("is a device file or", line)
    assert listing(dest) == ["dev.tar"]


def test_a_fifo_in_a_zip_is_a_special_file(emulator, dest):
    """The page's other wording of the entry above (for zips)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("fifo")
        info.create_system, info.external_attr = 3, (stat.S_IFIFO | 0o644) << 16
        zf.writestr(info, b"")
    emulator.add_file("fifo.zip", buf.getvalue())
    code, line = pull("drive:fifo.zip", str(dest))
    assert code == 1 and "member 'fifo' of " in line and "is a special file" in line, line


@renders("cannot read the zip")
def test_a_truncated_zip(emulator, dest):
    blob = a_zip({f"ds/{i}.bin": os.urandom(3000) for i in range(8)})
    emulator.add_file("cut.zip", blob[: len(blob) // 2])
    code, line = pull("drive:cut.zip", str(dest))
    assert code == 1
    shown("cannot read the zip", line)
    assert "cut.zip" in line and listing(dest) == ["cut.zip"] and ".partial" not in line


def test_a_truncated_tar_gz(emulator, dest):
    """The page's other wording of the entry above (for tars)."""
    blob = a_tgz({f"ds/{i}.bin": os.urandom(3000) for i in range(8)})
    emulator.add_file("cut.tar.gz", blob[: len(blob) // 2])
    code, line = pull("drive:cut.tar.gz", str(dest))
    assert code == 1 and "cannot read the tar" in line, line
    assert listing(dest) == ["cut.tar.gz"] and ".partial" not in line


@renders("its central directory takes … more than the … drivestage reads")
def test_a_central_directory_larger_than_drivestage_reads(emulator, dest, monkeypatch):
    from drivestage.extract import members

    monkeypatch.setattr(members, "MAX_ZIP_DIRECTORY", 1024)  # 50 members take about 3 KiB
    emulator.add_file("set.zip", a_zip({f"ds/{i:03d}.txt": b"x" for i in range(50)}))
    code, line = pull("drive:set.zip", str(dest))
    assert code == 1
    shown("its central directory takes … more than the … drivestage reads", line)
    assert listing(dest) == ["set.zip"]


@renders("members, more than drivestage extracts from one archive")
def test_more_members_than_drivestage_extracts(emulator, dest, monkeypatch):
    from drivestage.extract import members

    monkeypatch.setattr(members, "MAX_MEMBERS", 10)
    emulator.add_file("set.tar.gz", a_tgz({f"ds/{i:02d}.txt": b"x" for i in range(11)}))
    code, line = pull("drive:set.tar.gz", str(dest))
    assert code == 1
    shown("members, more than drivestage extracts from one archive", line)
    assert "has more than 10 members" in line and listing(dest) == ["set.tar.gz"]


@renders("fails its CRC-32 check")
def test_a_member_corrupt_inside_a_verified_archive(emulator, dest):
    raw = bytearray(a_zip({"ok.txt": b"fine", "bad.bin": b"\0" * 5000}))
    raw[raw.index(b"\0" * 5000) + 100] ^= 0xFF  # uploaded broken: Drive's md5 is of these bytes
    emulator.add_file("c.zip", bytes(raw))
    code, line = pull("drive:c.zip", str(dest))
    assert code == 1
    shown("fails its CRC-32 check", line)
    assert "member 'bad.bin'" in line and listing(dest) == ["c.zip"]
    # Named by the archive's own name, not the partial file it was extracted from while
    # it downloaded.
    assert f"member 'bad.bin' of {dest / 'c.zip'} fails" in line and ".partial" not in line


@renders("is encrypted;")
def test_an_encrypted_zip(emulator, dest):
    raw = bytearray(a_zip({"secret.txt": b"x"}))
    struct.pack_into("<H", raw, raw.index(b"PK\x01\x02") + 8, 0x1)  # the encrypted flag
    emulator.add_file("enc.zip", bytes(raw))
    code, line = pull("drive:enc.zip", str(dest))
    assert code == 1
    shown("is encrypted;", line)
    assert listing(dest) == ["enc.zip"]


@renders("is not a zip or tar archive")
def test_extract_of_a_file_that_is_no_archive(emulator, dest):
    emulator.add_file("notes.txt", b"just text")
    code, line = pull("drive:notes.txt", str(dest))
    assert code == 1
    shown("is not a zip or tar archive", line)
    assert (dest / "notes.txt").read_bytes() == b"just text"  # downloaded and verified


@renders("is a file, but … is a folder; move that folder away or extract elsewhere")
def test_a_member_file_where_dest_has_a_folder(emulator, dest):
    (dest / "model.bin").mkdir(parents=True)
    (dest / "model.bin/mine.txt").write_bytes(b"the user's")
    emulator.add_file("m.zip", a_zip({"model.bin": b"weights", "other.txt": b"o"}))
    code, line = pull("drive:m.zip", str(dest))
    assert code == 1
    shown("is a file, but … is a folder; move that folder away or extract elsewhere", line)
    assert listing(dest) == ["m.zip", "model.bin", "model.bin/mine.txt"]


@renders("was killed by … before its work was done; run the command again")
def test_an_extraction_worker_killed_mid_way(emulator, dest):
    """A big archive's members are written by two worker processes (``pull -x`` of a zip
    staged already). Both are killed as the first member appears in the temporary folder
    (as the kernel's out-of-memory killer would): the command says so, DEST holds what it
    held, and no worker or temporary folder is left."""
    import signal
    import threading
    import time

    from test_extract_workers import big_zip, members, worker_pids
    from drivestage.extract.tempdir import TEMP_PREFIX

    emulator.add_file("d/set.zip", big_zip({"set/zeros.bin": bytes(64 << 20), **members()}))
    staged = CliRunner().invoke(cli, ["pull", "drive:d/set.zip", str(dest), "-q"])
    assert staged.exit_code == 0, staged.stderr
    before = listing(dest)
    got: list[tuple[int, str]] = []
    t = threading.Thread(target=lambda: got.append(pull("drive:d/set.zip", str(dest))))
    t.start()
    killed: list[int] = []
    deadline = time.monotonic() + 60
    while t.is_alive() and not killed:
        assert time.monotonic() < deadline
        pids = worker_pids(os.getpid())
        if len(pids) == 2 and list(dest.glob(TEMP_PREFIX + "*/set/zeros.bin")):
            for pid in pids:
                try:   # (a worker whose share was done may have ended since it was listed)
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append(pid)
        time.sleep(0.001)
    t.join(60)
    assert killed, "the extraction ended before its workers could be killed"
    [(code, line)] = got
    assert code == 1
    shown("was killed by … before its work was done; run the command again", line)
    assert any(f"the extraction worker process {pid} was killed by SIGKILL before its work "
               "was done; run the command again (if this happens again, the machine may be "
               "short of memory)" in line for pid in killed), line
    assert listing(dest) == before
    assert worker_pids(os.getpid()) == []
