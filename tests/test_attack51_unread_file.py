"""attack51: a hostile or torn ``unread.json`` (mount50's memory of the folders push could
not read), and hostile fields in its records.

The memory was read with a plain ``open()`` and ``json.load``: a FIFO at its name held every
push, mirror and ``unread list`` for good (waiting for a writer), a link to a device read it
(``/dev/zero``: memory filled in seconds), and a file nested thousands deep ended the push in
a ``RecursionError`` traceback (only OSError and ValueError were taken as "damaged"). Now a
state file is read only as a regular file, at most so large, and one nested too deep is
damaged: said once, taken as none, written anew. A record's errno past a C int ended the push
and ``unread list`` in an OverflowError (``os.strerror``), a date of nan or past year 9999
ended ``unread list`` in a traceback, and a machine's name with a line end or an escape was
written raw to the terminal (a line of its own)."""
from __future__ import annotations

import json
import os
import socket
import threading

import pytest

from _cli import run
from test_pushread48_unread import live
from test_pushremount49_memory import _memory_of_this_process_none  # noqa: F401


def _push(tmp_path, *more: str) -> tuple[int, str, str]:
    return run("push", str(tmp_path / "src"), "drive:runs/x", "--delete", *more)


def _src(tmp_path, emulator) -> None:
    (tmp_path / "src" / "mnt").mkdir(parents=True)   # (a bare mount point: reads empty)
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    emulator.add_file("runs/x/a.txt", b"a")
    emulator.add_file("runs/x/mnt/m.txt", b"mounted")


def _in_a_thread(fn):
    """``fn()``'s result, or a failure where it does not return within 10 s (a FIFO opened
    for reading waits for a writer: the thread is left blocked, on the old code only)."""
    got: list = []
    t = threading.Thread(target=lambda: got.append(fn()), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "still waiting after 10 s"
    return got[0]


def _make(kind: str, path) -> str:
    """A hostile ``unread.json`` of ``kind`` at ``path``; the warning's reason."""
    if kind == "fifo":
        os.mkfifo(path)
        return "not a regular file (a FIFO, socket or device)"
    if kind == "device":
        os.symlink("/dev/null", path)   # (/dev/zero's kind, ending at once on the old code)
        return "not a regular file (a FIFO, socket or device)"
    if kind == "deep":
        path.write_text("[" * 100_000)
        return "nested too deep"
    with open(path, "wb") as fh:   # huge: sparse, 33 MiB of zeros
        fh.truncate(33 << 20)
    return f"more than {32 << 20} bytes"


@pytest.mark.parametrize("kind", ["fifo", "device", "deep", "huge"])
def test_a_hostile_unread_json_is_said_and_written_anew(
        emulator, drive_env, local_state, tmp_path, kind):
    """Read as damaged (said once, taken as none); the push goes on (on main: the FIFO held
    it, the deep file ended it in a RecursionError, the device and the huge file read as
    JSON that failed). What such a push may delete is test_attack51_unread_unreadable's
    question: nothing is remembered here."""
    from drivestage import unread_records

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    state = tmp_path / "state"
    state.mkdir()
    why = _make(kind, state / "unread.json")
    code, _out, err = _in_a_thread(lambda: _push(tmp_path))
    assert code == 0, err
    warned = [line for line in err.splitlines() if "ignoring" in line]
    assert warned == [f"WARNING drivestage.upload_tree: ignoring {state / 'unread.json'} "
                      f"({why}): a folder an earlier push could not read is not known to "
                      "this one; it is written anew"], err
    assert live(emulator) == {"a.txt": b"a"}
    assert _in_a_thread(unread_records.records) == []   # (the push's memory: none to note)


def _records(tmp_path, **fields) -> None:
    (tmp_path / "state").mkdir(exist_ok=True)
    rec = {"errno": 5, "t": 1764547200, **fields}
    (tmp_path / "state" / "unread.json").write_text(json.dumps(
        {"version": 1, "folders": {str(tmp_path / "src" / "mnt"): {socket.gethostname(): rec}}}))


def test_a_record_whose_errno_is_past_a_c_int_keeps_the_folder_without_a_traceback(
        emulator, drive_env, local_state, tmp_path):
    """The folder is kept as any record's (exit 1, the copies stay), its reason unknown; on
    main: OverflowError from os.strerror, a traceback, in the push and in ``unread list``."""
    _src(tmp_path, emulator)
    _records(tmp_path, errno=10 ** 30)
    code, _out, err = _push(tmp_path)
    assert code == 1, err
    assert "reads as an empty folder where the last push could not read it" in err
    assert live(emulator) == {"a.txt": b"a", "mnt/m.txt": b"mounted"}
    code, out, err = run("unread", "list")
    assert (code, out) == (0, f"{tmp_path / 'src' / 'mnt'}: {socket.gethostname()}, "
                              "2025-12-01 00:00 UTC: unknown\n"), err   # (mount51b: was Success)


@pytest.mark.parametrize("t", [float("nan"), 1e300, -1e20])
def test_unread_list_shows_a_date_it_cannot_show_as_unknown(tmp_path, local_state, t):
    """On main: ValueError / OverflowError from time.gmtime, a traceback."""
    _records(tmp_path, t=t)
    code, out, err = run("unread", "list")
    assert (code, out) == (0, f"{tmp_path / 'src' / 'mnt'}: {socket.gethostname()}, date "
                              "unknown: Input/output error\n"), err


def test_unread_list_writes_a_machine_name_as_printable(tmp_path, local_state):
    """A record of a machine named with a line end and an escape (a hostile or damaged file)
    is one line, the name escaped as a path is (on main: two lines, the escape raw)."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "unread.json").write_text(json.dumps(
        {"version": 1, "folders": {"/x": {"h\x1b[2J\nforged: line": {"errno": 5, "t": 0}}}}))
    code, out, err = run("unread", "list")
    assert (code, out) == (0, "/x: h\\x1b[2J\\x0aforged: line, date unknown: "
                              "Input/output error\n"), err


@pytest.mark.parametrize("bad", ["\x00x", "\ud800"])
def test_a_record_whose_path_the_system_cannot_take_is_left_out(
        emulator, drive_env, local_state, tmp_path, bad):
    """A record of ``SRC/mnt<NUL>x`` (or with half a surrogate pair): on main ``push`` ended
    in ``ValueError: embedded null byte`` (UnicodeEncodeError) from its look whether the
    folder is gone, and ``unread forget`` of any path from its realpath; now such a record
    is no folder's, left out."""
    _src(tmp_path, emulator)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "unread.json").write_text(json.dumps({"version": 1, "folders": {
        str(tmp_path / "src" / "mnt") + bad: {socket.gethostname(): {"errno": 107, "t": 1}}}}))
    code, out, err = run("unread", "forget", str(tmp_path / "elsewhere"))
    assert (code, out) == (0, "no such record (drivestage unread list shows them)\n"), err
    code, _out, err = _push(tmp_path)
    assert code == 0, err
