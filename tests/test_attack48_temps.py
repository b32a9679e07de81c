"""attack48: another machine's temporary file, a write in progress, in a folder both machines
write (an NFS share, a Drive mount), swept by a machine whose clock runs two days ahead.

A temporary file of another process-id namespace (another machine, container or boot) cannot
be asked about; it is a leftover once "last written more than ``temps.FOREIGN_STALE_S`` (a
day) ago" - by this machine's clock against the file's mtime, which the writer's machine (or
the file server) stamped. Two days ahead, a checkpoint another machine is writing right now
reads two days old: the next atomic write here removed it, and that machine's save failed at
its rename (its checkpoint never written). Now such a file is a day old by the file system's
clock too (the ctime of the folder it is in, no later than now). The writing process here
runs with its clock two days ahead (``tests/_clock_shim``); the file system's is right."""
from __future__ import annotations

import os
import subprocess
import sys

from drivestage import temps
from tests._clock import skewed_env

AHEAD = 2 * 86400.0

_CHILD = """
import sys
from drivestage.localfs import atomic_write
atomic_write(sys.argv[1], b"{}")
"""


def test_a_machine_two_days_ahead_leaves_another_machines_write_in_progress(tmp_path):
    other = "0" * 8 if temps.namespace_tag() != "0" * 8 else "1" * 8
    writing = tmp_path / f".epoch_007.pt.{other}-4242.a1b2c3.tmp"
    writing.write_bytes(b"half a checkpoint")        # (written now, by the file system's clock)
    assert temps.parse(writing.name) is not None
    out = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "state.json")],
                         env=skewed_env(AHEAD, os.environ), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "state.json").read_bytes() == b"{}"
    assert writing.read_bytes() == b"half a checkpoint"


_LISTS = """
import sys
from drivestage.localdir import LocalDirStore
store = LocalDirStore(sys.argv[1])
print([e.name for e in store.list(store.resolve(""))])
"""


def test_a_machine_two_days_ahead_leaves_another_machines_copy_under_way_in_a_folder_dest(
        tmp_path):
    """The same for a push into a folder DEST (``drivestage push SRC /mnt/share/runs``):
    another machine's copy under way there (``.drivestage-upload-<tag>.<pid>-<random>``) is
    left, as a day old by neither clock (main: removed by the listing of a machine two days
    ahead, that machine's copy failed)."""
    from drivestage.localdir import UPLOAD_PREFIX

    other = "0" * 8 if temps.namespace_tag() != "0" * 8 else "1" * 8
    root = tmp_path / "dest"
    root.mkdir()
    (root / "done.pt").write_bytes(b"sent before")
    copying = root / f"{UPLOAD_PREFIX}{other}.4242-0123456789ab"
    copying.write_bytes(b"half a checkpoint")
    out = subprocess.run([sys.executable, "-c", _LISTS, str(root)],
                         env=skewed_env(AHEAD, os.environ), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['done.pt']"
    assert copying.read_bytes() == b"half a checkpoint"
