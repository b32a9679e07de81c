"""attackx25: the one-read extraction of a local archive (:mod:`drivestage.hashed_pass`),
attacked as a hostile archive author and a hostile file system would.

A first ``pull ARCHIVE DEST -x`` of a local zip/tar reads it once, hashing the blocks as a
thread reads them, and writes the members from those very blocks. Every rule of the usual
extraction (:func:`drivestage.extract.extract`) must hold on it:

1. hostile archives (zip-slip, links out of DEST or written through, device members,
   encrypted members, a lying CRC or size, overlapping members, a broken gzip trailer) are
   refused with the usual extraction's very message, and DEST keeps nothing; duplicates and
   a folder and a file of one name end as the usual extraction ends them;
2. the original truncated, replaced or unreadable midway: one line, nothing staged;
3. a Ctrl-C stops the read of a tar's big member at once (it read the member to its end);
4. members far apart in the file do not keep every block read in memory while DEST lags
   (the 16 MiB window held only for bytes, not for the blocks small pieces kept alive);
5. a tar given by a link is read once (it fell back to two reads).
"""
from __future__ import annotations

import errno
import io
import os
import signal
import struct
import sys
import tarfile
import threading
import time
import tracemalloc
import zipfile

import pytest

from test_attack22_stage import _tree
from test_messages_walk20 import _drivestage
from test_stage23 import _reads, needs_proc_io

import drivestage.hashed_pass as hashed_pass
from drivestage.extract import extract
from drivestage.stage import pull


def _zip(members, method: int = zipfile.ZIP_STORED) -> bytes:
    """``members``: (name, data) or (name, data, unix mode)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, *mode in members:
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            if mode:
                info.external_attr, info.create_system = mode[0] << 16, 3
            zf.writestr(info, data, compress_type=method)
    return buf.getvalue()


def _tar(members, mode: str = "w") -> bytes:
    """``members``: (name, kind, data-or-link[, pax path])."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tf:
        for name, kind, data, *pax in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if pax:
                info.pax_headers = {"path": pax[0]}
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
                         "hard": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            info.linkname = data if isinstance(data, str) else ""
            tf.addfile(info)
    return buf.getvalue()


def _directory_entry(data: bytes, name: str) -> int:
    at = data.index(b"PK\x01\x02")
    while data[at + 46:at + 46 + len(name)] != name.encode():
        at = data.index(b"PK\x01\x02", at + 4)
    return at


def _patched(data: bytes, name: str, field: int, value: bytes) -> bytes:
    """``data`` whose central directory entry of ``name`` holds ``value`` at ``field``."""
    at = _directory_entry(data, name) + field
    return data[:at] + value + data[at + len(value):]


_TWO = [("a", b"A" * 5000), ("b", b"B" * 10)]
_GZ = _tar([("a", "file", os.urandom(3000))], "w:gz")

HOSTILE = {
    "zip ../": ("zip", lambda: _zip([("ok", b"1"), ("../evil", b"x")])),
    "zip backslashes": ("zip", lambda: _zip([("a\\..\\..\\evil", b"x")])),
    "zip drive letter": ("zip", lambda: _zip([("C:\\evil", b"x")])),
    "zip reserved name": ("zip", lambda: _zip([("d/.DriveStage/x", b"x")])),
    "zip fifo": ("zip", lambda: _zip([("f", b"", 0o010644)])),
    "zip link out": ("zip", lambda: _zip([("l", b"../../etc", 0o120777)])),
    "zip through a link": ("zip", lambda: _zip([("l", b"d", 0o120777), ("d/", b""),
                                                 ("l/x", b"x")])),
    "zip a file then below it": ("zip", lambda: _zip([("a", b"f"), ("a/b", b"x")])),
    "zip encrypted": ("zip", lambda: _patched(_zip([("a", b"x")]), "a", 8, b"\x01\0")),
    "zip lying crc deflated": ("zip", lambda: _patched(_zip(_TWO, zipfile.ZIP_DEFLATED),
                                                       "a", 16, b"\xde\xad\xbe\xef")),
    "zip lying crc stored": ("zip", lambda: _patched(_zip(_TWO), "b", 16, b"\xde\xad\xbe\xef")),
    "zip past the end": ("zip", lambda: _patched(_zip(_TWO), "b", 42, struct.pack("<I", 1 << 20))),
    "zip overlapping": ("zip", lambda: _patched(_zip(_TWO), "b", 42, struct.pack("<I", 0))),
    "zip small in the directory": ("zip", lambda: _patched(_zip(_TWO), "a", 20,
                                                           struct.pack("<II", 100, 100))),
    "tar ../": ("tar", lambda: _tar([("ok", "file", b"1"), ("../evil", "file", b"x")])),
    "tar pax path ../": ("tar", lambda: _tar([("innocent", "file", b"x", "../evil")])),
    "tar long name to ..": ("tar", lambda: _tar([("a/" * 60 + "../" * 61 + "e", "file", b"x")])),
    "tar link out": ("tar", lambda: _tar([("l", "sym", "/etc")])),
    "tar through a link": ("tar", lambda: _tar([("l", "sym", "d"), ("d", "dir", None),
                                                ("l/x", "file", b"x")])),
    "tar hard link out": ("tar", lambda: _tar([("h", "hard", "../etc/passwd")])),
    "tar hard link forward": ("tar", lambda: _tar([("h", "hard", "f"), ("f", "file", b"x")])),
    "tar fifo": ("tar", lambda: _tar([("p", "fifo", None)])),
    "tar.gz broken trailer": ("tar.gz", lambda: _GZ[:-8] + b"\0" * 8),
}
SAME_END = {
    "zip duplicates": ("zip", lambda: _zip([("a", b"first"), ("b", b"b"), ("a", b"second")])),
    "zip folder then file": ("zip", lambda: _zip([("a/", b""), ("a", b"file")])),
    "zip letter case": ("zip", lambda: _zip([("A", b"up"), ("a", b"low")])),
    "tar duplicates": ("tar", lambda: _tar([("a", "file", b"first"), ("a", "file", b"2nd")])),
    "tar folder then file": ("tar", lambda: _tar([("a", "dir", None), ("a", "file", b"x")])),
    "tar file then folder": ("tar", lambda: _tar([("a", "file", b"x"), ("a", "dir", None)])),
    "tar.gz duplicates": ("tar.gz", lambda: _tar([("a", "file", b"1st"), ("a", "file", b"2")],
                                                 "w:gz")),
}


def _original(tmp_path, kind: str, data: bytes):
    (tmp_path / "input").mkdir(exist_ok=True)
    archive = tmp_path / "input" / f"set.{kind}"
    archive.write_bytes(data)
    return archive


def _usual(archive, dest) -> str:
    """What the usual extraction says of ``archive`` ("" when it extracts it)."""
    try:
        extract(str(archive), str(dest))
    except Exception as exc:  # the message is what is compared
        return str(exc)
    return ""


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_as_the_usual_extraction_refuses_it(case, local_state,
                                                                       tmp_path):
    kind, make = HOSTILE[case]
    archive = _original(tmp_path, kind, make())
    usual = _usual(archive, tmp_path / "usual")
    assert usual, case                                    # (the attack is one it refuses)
    r = _drivestage("pull", str(archive), str(tmp_path / "d"), "-x", "-q")
    assert r.exit_code == 1, r.output
    assert r.output.strip() == f"Error: {usual}", (r.output, usual)
    assert os.listdir(tmp_path / "d") == [".drivestage"]  # no member, no temporary folder


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("case", sorted(SAME_END))
def test_duplicates_and_kind_clashes_end_as_the_usual_extraction_ends_them(case, local_state,
                                                                         tmp_path):
    kind, make = SAME_END[case]
    archive = _original(tmp_path, kind, make())
    assert _usual(archive, tmp_path / "usual") == ""
    r = _drivestage("pull", str(archive), str(tmp_path / "d"), "-x", "-q")
    assert r.exit_code == 0, r.output
    assert _tree(tmp_path / "d") == _tree(tmp_path / "usual")


# ------------------------------------------- 2. truncated, replaced, unreadable midway

def _members(n: int = 6) -> dict[str, bytes]:
    return {f"m{i}": os.urandom(200 << 10) for i in range(n)}


def _archive(kind: str, members: dict[str, bytes]) -> bytes:
    if kind == "zip":
        return _zip(list(members.items()))
    return _tar([(k, "file", v) for k, v in members.items()], "w:gz")


def _at_second_block(monkeypatch, act) -> None:
    """``act()`` once the pass reads its second block (64 KiB blocks)."""
    real, done = hashed_pass._Reader._block, []

    def block(self, offset):
        if offset > 0 and not done:
            done.append(True)
            act()
        return real(self, offset)

    monkeypatch.setattr(hashed_pass._Reader, "_block", block)
    monkeypatch.setattr(hashed_pass, "CHUNK", 64 << 10)


@pytest.mark.parametrize("kind,how", [("zip", "truncated"), ("tar.gz", "replaced")])
def test_an_original_truncated_or_replaced_midway_stages_nothing(kind, how, local_state,
                                                                tmp_path, monkeypatch):
    archive = _original(tmp_path, kind, _archive(kind, _members()))
    other = tmp_path / "other"
    other.write_bytes(_archive(kind, {"m0": b"not the listed bytes"}))
    _at_second_block(monkeypatch, lambda: os.truncate(archive, 100 << 10) if how == "truncated"
                     else os.replace(other, archive))
    r = _drivestage("pull", str(archive), str(tmp_path / "d"), "-x", "-q")
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"Error: {archive} changed while it was read"), r.output
    assert os.listdir(tmp_path / "d") == [".drivestage"]


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_a_read_error_midway_stages_nothing_and_the_rerun_stages_it(kind, local_state,
                                                                   tmp_path, monkeypatch):
    """A mount that answers EIO for the later blocks (a FUSE daemon gone bad)."""
    members = _members()
    archive = _original(tmp_path, kind, _archive(kind, members))

    def fail() -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    _at_second_block(monkeypatch, fail)
    r = _drivestage("pull", str(archive), str(tmp_path / "d"), "-x", "-q")
    assert r.exit_code == 1, r.output
    assert r.output.strip().endswith(os.strerror(errno.EIO)), r.output
    assert os.listdir(tmp_path / "d") == [".drivestage"]
    monkeypatch.undo()
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    assert _drivestage("pull", str(archive), str(tmp_path / "d"), "-x", "-q").exit_code == 0
    assert _tree(tmp_path / "d") == members


# ---------------------------------------------------- 3. a Ctrl-C in a tar's big member

def test_a_ctrl_c_in_a_tar_s_big_member_stops_the_read_at_once(local_state, tmp_path,
                                                              monkeypatch):
    """The tar is written from the read by a thread of its own, which looked for the stop
    only between members: a Ctrl-C at the 12th block of a 24 MiB member read (and wrote
    into the temporary folder) all 24 before it was raised - minutes for a 20 GB member
    on a slow mount. The usual extraction stops at once."""
    data = _tar([("big.bin", "file", bytes(24 << 20))])
    archive = _original(tmp_path, "tar", data)
    real, read = hashed_pass._Reader._block, []

    def block(self, offset):
        read.append(offset)
        if len(read) == 12:  # (the tar's thread is in the member: the read is 8 ahead)
            # What a Ctrl-C does (interrupt_main() would not wake the main thread's wait)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        return real(self, offset)

    monkeypatch.setattr(hashed_pass._Reader, "_block", block)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            pull(str(archive), str(tmp_path / "d"), extract=True, quiet=True)
    finally:
        signal.signal(signal.SIGINT, handler)
    # The read ahead (8 blocks) and what the tar thread held, not the 24 MiB.
    assert len(read) <= 12 + hashed_pass._AHEAD + 2, len(read)
    assert os.listdir(tmp_path / "d") == [".drivestage"]


# ---------------------------------------- 4. memory: members far apart, DEST lagging

def test_members_far_apart_keep_no_more_than_the_window_while_dest_lags(local_state,
                                                                       tmp_path, monkeypatch):
    """48 one-byte members, each behind 1 MiB that no member holds (a zip may have bytes
    between its members): each member's byte was a slice of the block it lay in, counted
    as 1 byte against the 16 MiB window but keeping the whole 1 MiB block alive. With a
    DEST slower than the read every block stayed in memory (49 MiB here; a 20 GB archive's
    size in memory for a bigger one)."""
    path = _original(tmp_path, "zip", b"")
    with open(path, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
        for i in range(48):
            zf.writestr(zipfile.ZipInfo(f"m{i:02d}", (2020, 1, 1, 0, 0, 0)), b"x")
            zf.fp.write(bytes(1 << 20))  # (zipfile writes the next member after it)
            zf.start_dir = zf.fp.tell()
    read_all = threading.Event()
    real_block, real_create = hashed_pass._Reader._block, hashed_pass.create

    def block(self, offset):
        out = real_block(self, offset)
        if not out:
            read_all.set()
        return out

    waited: list[bool] = []

    def create(root, e):  # a DEST slower than the read: the writers wait for its end
        waited.append(read_all.wait(20))   # (ran out: the read waited for the writers)
        return real_create(root, e)

    monkeypatch.setattr(hashed_pass._Reader, "_block", block)
    monkeypatch.setattr(hashed_pass, "create", create)
    tracemalloc.start()
    try:
        result = pull(str(path), str(tmp_path / "d"), extract=True, quiet=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.action == "extract" and len(os.listdir(tmp_path / "d")) == 49
    assert waited and all(waited), "the read did not end while the writers waited"
    assert peak < 24 << 20, peak / 2 ** 20   # the window and the read ahead, no more


# ------------------------------------------------------ 5. a tar given by a link

@needs_proc_io
def test_a_tar_given_by_a_link_is_read_once(local_state, tmp_path):
    """The tar's follower opens the archive again without following a link (a download's
    partial file): a tar given by a link (to a file beside it) fell back to a hash and then
    an extraction, 2.01x its size read; 1.0x now, its messages naming the link."""
    members = _members(8)
    real = _original(tmp_path, "tar", _tar([(k, "file", v) for k, v in members.items()]))
    link = real.with_name("link.tar")
    link.symlink_to(real.name)
    assert _reads(link, tmp_path / "d") < 1.1
    assert _tree(tmp_path / "d") == members


# ------------------------------------ 6. a Ctrl-C while the zip's writers finish

def test_a_ctrl_c_while_the_writers_finish_waits_for_them_before_the_folder_goes(
        local_state, tmp_path, monkeypatch):
    """The read done, the pass waits for its two writers (their last members); a Ctrl-C
    there was raised at once: the writers were not told to stop, and the temporary folder
    was removed while one still wrote into it (a member then created through the
    descriptor of a folder removed, a number the process may have given another file
    already). The Ctrl-C is raised as the main thread starts to wait (a trace function:
    deterministic, where a signal's arrival is not)."""
    members = {"a": b"A" * 1000, "z": b"Z" * 1000}
    archive = _original(tmp_path, "zip", _zip(list(members.items())))
    real_create, seen, writers = hashed_pass.create, [], []
    busy, cut = threading.Event(), threading.Event()

    def create(root, e):
        if e.path == "z":  # the last member's writer: busy when the Ctrl-C comes
            busy.set()
            cut.wait(10)
            for _ in range(20000):  # until the folder goes, or the writers are stopped
                if not os.path.isdir(root.path) or writers[0].failed is not None:
                    break
                time.sleep(0.0005)
            seen.append(os.path.isdir(root.path))
        return real_create(root, e)

    def trace(frame, event, arg):
        caller = frame.f_back
        if event == "call" and frame.f_code.co_name == "join" and not cut.is_set() and \
                caller is not None and caller.f_code.co_name == "close" and \
                type(caller.f_locals.get("self")).__name__ == "_Writers":
            writers.append(caller.f_locals["self"])
            busy.wait(10)
            cut.set()
            raise KeyboardInterrupt  # a Ctrl-C as the main thread starts to wait
        return None

    monkeypatch.setattr(hashed_pass, "create", create)
    sys.settrace(trace)
    try:
        with pytest.raises(KeyboardInterrupt):
            pull(str(archive), str(tmp_path / "d"), extract=True, quiet=True)
    finally:
        sys.settrace(None)
    assert seen == [True]           # the folder stayed while the writer was at work
    assert not any(t.is_alive() for t in threading.enumerate()
                   if t.name == "drivestage-write")
    assert os.listdir(tmp_path / "d") == [".drivestage"]


def test_a_ctrl_c_as_the_writers_are_closed_stops_them(local_state, tmp_path):
    """A Ctrl-C at the call of the writers' close() (before its body: the sweep of
    test_original25 lands there with DRIVESTAGE_TEST_SWEEP=all, not every 2nd call) left
    both writers waiting for more members for good: two threads per Ctrl-C in a
    notebook."""
    members = {"a": b"A" * 1000, "z": b"Z" * 1000}
    archive = _original(tmp_path, "zip", _zip(list(members.items())))
    before = set(threading.enumerate())
    cut = []

    def trace(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "close" and not cut and \
                type(frame.f_locals.get("self")).__name__ == "_Writers":
            cut.append(True)
            raise KeyboardInterrupt
        return None

    sys.settrace(trace)
    try:
        with pytest.raises(KeyboardInterrupt):
            pull(str(archive), str(tmp_path / "d"), extract=True, quiet=True)
    finally:
        sys.settrace(None)
    for t in set(threading.enumerate()) - before:
        t.join(10)
    assert not [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert os.listdir(tmp_path / "d") == [".drivestage"]


# ------------------------------------------------ 7. a tar larger than the free space

def _until_only(text: str) -> str:
    return text.split(", only ")[0]


@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
def test_a_tar_larger_than_the_free_space_is_refused_as_the_usual_extraction_refuses_it(
        kind, local_state, tmp_path):
    """The usual extraction checks the whole member list against the free space before it
    writes ("needs 32.0 MiB …"); the one-read pass of a local tar checks member by member
    as it streams, and said what one member needs ("needs 4.0 MiB …, only 2.0 MiB free":
    free 4 MiB and it failed again at the next). It now takes the usual way there, which
    says what the whole archive needs (the stream still wrote up to the reserve first)."""
    import shutil

    members = [(f"m{i}", "file", bytes(4 << 20)) for i in range(8)]
    archive = _original(tmp_path, kind, _tar(members, "w:gz" if kind == "tar.gz" else "w"))
    dest = tmp_path / "d"
    # Nothing left to use above the reserve (a margin other tests' files do not move).
    reserve = shutil.disk_usage(tmp_path).free + (1 << 30)
    r = _drivestage("pull", str(archive), str(dest), "-x", "-q", "--reserve", str(reserve))
    assert r.exit_code == 1, r.output
    assert os.listdir(dest) == [".drivestage"]
    with pytest.raises(Exception) as usual:
        extract(str(archive), str(dest),
                free_bytes=lambda p: shutil.disk_usage(p).free - reserve)
    assert _until_only(r.output.strip()) == _until_only(f"Error: {usual.value}"), r.output


def _wchar() -> int:
    with open("/proc/self/io") as fh:
        return int(dict(line.split(": ") for line in fh.read().splitlines())["wchar"])


@needs_proc_io
def test_a_plain_tar_larger_than_the_free_space_writes_nothing_before_it_is_refused(
        local_state, tmp_path):
    """A plain tar's members take about its size: one larger than the free space is
    refused before anything is written, as the usual extraction refuses it. The stream
    wrote members into DEST's disk until the next one did not fit (12 of 32 MiB, with
    about 14 MiB free): the disk full meanwhile, for whatever else writes there (a
    training run's checkpoints)."""
    import shutil

    members = [(f"m{i}", "file", bytes(4 << 20)) for i in range(8)]
    archive = _original(tmp_path, "tar", _tar(members))
    reserve = shutil.disk_usage(tmp_path).free - (14 << 20)   # about 14 MiB left to use
    before = _wchar()
    r = _drivestage("pull", str(archive), str(tmp_path / "d"), "-x", "-q",
                    "--reserve", str(reserve))
    written = _wchar() - before
    if r.exit_code == 0:  # (another test freed 18 MiB or more of the shared disk meanwhile)
        pytest.skip("the free space moved")
    assert "needs 32.0 MiB" in r.output, r.output
    assert written < 1 << 20, written / 2 ** 20
