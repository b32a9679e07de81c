"""attack51: an ``unread.json`` that cannot be read (EACCES), not damaged (a strict xfail
of attack51; the lead took option (a) with (b)'s not written over: drivestage/unread_guard.py).

mount50's memory takes one it cannot read as none ("said, and written anew"), as a damaged
one. Unreadable is not damaged: a ``sudo drivestage push`` (to read a root-only mount) that
met a stopped mount wrote it root's, mode 0600, in the user's state folder; the user's next
push could not read it, said so, and went on without it: its ``--delete`` trashed the
mount's copies on Drive, the loss the memory is for (and a push that notes a folder writes
the file anew, a rename in the user's own folder replacing root's: its records lost for
good). pull50 ruled
the same for a sidecar (never written over when it could not be read). The push runs in a
forked child without root's reads (tests/_no_root_reads.py), the memory mode 000.

Options (the lead's call; see the note):
  (a) a push with ``--delete`` is refused while the memory cannot be read (exit 1: make it
      readable, or move it away to start anew); without ``--delete`` nothing is at stake;
  (b) the memory is not written over (this process's records held in memory, as for a
      read-only state folder), and while it cannot be read every folder that reads empty
      is kept as unread (nothing under it deleted);
  (c) as now: said, taken as none, written anew (the record lost).
"""
from __future__ import annotations

import errno
import json
import os
import socket
import sys

import pytest

from _cli import run
from _messages import error_line
from _no_root_reads import in_a_child
from test_pushread48_unread import live
from test_pushremount49_memory import _memory_of_this_process_none  # noqa: F401


def unreadable_memory_of_a_stopped_mount(emulator, tmp_path):
    """SRC with ``a.txt`` and the bare mount point ``mnt`` of a stopped mount whose copy
    ``mnt/m.txt`` Drive holds, and the memory that says so, mode 000 (root's reads dropped
    by :func:`in_a_child`). Returns the memory's path."""
    mnt = tmp_path / "src" / "mnt"
    mnt.mkdir(parents=True)   # (the stopped mount, unmounted: its bare mount point)
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    emulator.add_file("runs/x/a.txt", b"a")
    emulator.add_file("runs/x/mnt/m.txt", b"mounted")
    memory = tmp_path / "state" / "unread.json"
    memory.parent.mkdir()
    memory.write_text(json.dumps({"version": 1, "folders": {str(mnt): {
        socket.gethostname(): {"errno": errno.ENOTCONN, "t": 1764547200}}}}))
    os.chmod(memory, 0)
    return memory


def refused_line(memory) -> str:
    """The ``--delete`` refusal while ``memory`` cannot be read."""
    return (f"Error: cannot read {memory} (Permission denied): it records the folders an "
            "earlier push could not read (a stopped mount), and without it --delete could take "
            "what Drive holds under one; nothing was sent or deleted. Make it readable (it may "
            "be another user's: a sudo push's), or move it away to start anew, then run again")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="capabilities: Linux")
def test_an_unreadable_memory_is_not_written_over_nor_its_folder_emptied_on_drive(
        emulator, drive_env, local_state, tmp_path):
    memory = unreadable_memory_of_a_stopped_mount(emulator, tmp_path)
    os.chmod(memory, 0o600)
    before = memory.read_bytes()
    os.chmod(memory, 0)

    code, _out, err = in_a_child(lambda: list(run("push", str(tmp_path / "src"),
                                                  "drive:runs/x", "--delete")))
    assert memory.read_bytes() == before and os.stat(memory).st_mode & 0o777 == 0, err
    assert live(emulator) == {"a.txt": b"a", "mnt/m.txt": b"mounted"}, err
    assert code == 1 and error_line(err) == refused_line(memory), err
