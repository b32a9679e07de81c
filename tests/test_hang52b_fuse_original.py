"""hang52b: Ctrl-C while a local archive extracted where it lies (stage_original) is hashed
from a FUSE or network mount that stopped answering.

A rerun of ``pull MOUNT/x.zip OUT -x`` whose archive lies on a FUSE mount (an rclone
remote: not a Drive mount, which is copied instead) hashes it again (no identity vouches on
a FUSE mount), by one descriptor, in the main thread: a read of a hung mount there held
every Ctrl-C until the mount answered (no signal breaks it, and Python's handler runs only
once it returns). Now that hash runs aside (:func:`drivestage.pool.aside`), each read a
:func:`~drivestage.pool.leavable` one, only on such a mount: "Interrupted." said while the
mount still hangs, exit 130 once it answers (the kernel holds the process until then:
tests/test_hang51_fuse_ctrl_c.py). Fails on main f9a4b7e7 (nothing said until the mount
answers: the helper's 30 s bound). The helper: tests/_hung_pull.py.
"""
from __future__ import annotations

import io
import itertools
import os
import select
import signal
import threading
import time
import zipfile

import pytest

from _drivemount import READ, FullDriveMount
from _forkcli import PIPE, cli_server
from _hung_pull import MTIME, ctrl_c_while_hung
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)


@pytest.fixture
def bucket_mount(tmp_path):
    """A started, writable FUSE mount of another program than Drive's (an rclone remote)."""
    mount = FullDriveMount(tmp_path / "bucket", writable=True)
    mount.kind = (b"bucket:", b"fuse.rclone")
    try:
        mount.start()
    except OSError as exc:
        pytest.skip(f"a FUSE mount is needed: {exc}")
    try:
        yield mount
    finally:
        mount.stop()


def test_ctrl_c_during_the_hash_of_a_local_archive_on_a_hung_mount(bucket_mount, tmp_path):
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as z:
        z.writestr("m.txt", b"m" * 5000)
    bucket_mount.change_on_drive("MyDrive/ds/x.zip", blob.getvalue(), MTIME)
    bucket_mount.catch_up()
    out = tmp_path / "out"
    first = cli_server().popen(["pull", str(bucket_mount.point / "MyDrive" / "ds" / "x.zip"),
                                str(out), "-q", "-x"], env=dict(os.environ), stdout=PIPE,
                               stderr=PIPE)
    assert first.communicate(timeout=60)[1] == b"" and first.returncode == 0
    assert (out / "m.txt").read_bytes() == b"m" * 5000
    # The rerun reads its head twice (is it an archive? LocalDirStore.looked: hang52b too),
    # then hashes it whole: hung at that hash's first read
    reads = itertools.count()
    said = ctrl_c_while_hung(bucket_mount, tmp_path, lambda out: next(reads) == 2,
                             src="ds/x.zip", more=["-x"], files={"x.zip": blob.getvalue()})
    assert said[:4] == ("Interrupted.\n", True, 130, "")
    assert (out / "m.txt").read_bytes() == b"m" * 5000


def _push_ctrl_c_while_hung(mount, dest, hung: threading.Event):
    """``push MOUNT/MyDrive/run DEST --jobs 1``, a Ctrl-C once ``hung`` is set (the mount's
    ``arriving`` set by the test): (stderr up to "Interrupted.", whether the mount still hung
    then, the exit code, the rest of stderr, stdout). The line's arrival is the event; the
    30 s bound is a failure's only."""
    proc = cli_server().popen(["push", str(mount.point / "MyDrive" / "run"), str(dest),
                               "--jobs", "1"], env=dict(os.environ), stdout=PIPE, stderr=PIPE)
    try:
        assert hung.wait(60), proc.communicate(timeout=60)
        proc.send_signal(signal.SIGINT)
        first, end = "", time.monotonic() + 30
        while not first.endswith("Interrupted.\n") and \
                select.select([proc.stderr], [], [], max(0, end - time.monotonic()))[0]:
            first += os.read(proc.stderr.fileno(), 4096).decode()
        still_hung = not mount.answering.is_set()
        mount.answer()
        out, rest = proc.communicate(timeout=30)
    finally:
        mount.answer()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    return first, still_hung, proc.returncode, rest, out


def test_ctrl_c_during_a_push_s_hash_of_its_source_on_a_hung_mount(bucket_mount, tmp_path):
    """A push from a FUSE mount (``--jobs 1``: its work in the main thread) hashes a file that
    DEST holds at its name to decide whether to send it (at every push: no identity vouches
    there; State.md5): hung at that first read."""
    bucket_mount.change_on_drive("MyDrive/run/a.txt", b"a" * 3000, MTIME)
    bucket_mount.catch_up()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "a.txt").write_bytes(b"b" * 3000)
    hung = threading.Event()

    def arriving(opcode: int) -> None:
        if opcode == READ and not hung.is_set():
            bucket_mount.hang()
            hung.set()

    bucket_mount.arriving = arriving
    said = _push_ctrl_c_while_hung(bucket_mount, dest, hung)
    assert said == ("Interrupted.\n", True, 130, b"", b"")
    assert [(p.name, p.read_bytes()) for p in dest.iterdir()] == [("a.txt", b"b" * 3000)]


def test_ctrl_c_during_a_push_s_read_of_a_sidecar_on_a_hung_mount(bucket_mount, tmp_path):
    """A push of a checkpoint and its sidecar from a FUSE mount (``--jobs 1``) reads the
    sidecar before it sends it (sidecar_copy.checked): hung at that read."""
    for name, data in {"epoch_001.pt": b"p" * 3000,
                       "epoch_001.json": b'{"format": 3, "md5": "x"}'}.items():
        bucket_mount.change_on_drive(f"MyDrive/run/{name}", data, MTIME)
    bucket_mount.catch_up()
    dest = tmp_path / "dest"
    dest.mkdir()
    hung = threading.Event()

    def arriving(opcode: int) -> None:
        if opcode == READ and not hung.is_set() and \
                bucket_mount.nodes[bucket_mount.node].name == "epoch_001.json" and \
                (dest / "epoch_001.pt").exists():   # (the checkpoint sent: the sidecar's turn)
            bucket_mount.hang()
            hung.set()

    bucket_mount.arriving = arriving
    said = _push_ctrl_c_while_hung(bucket_mount, dest, hung)
    src = bucket_mount.point / "MyDrive" / "run"
    assert said == (
        f"push {src} -> {dest}, then failed: 1 uploaded (2.9 KiB), 0 unchanged\n"
        "Interrupted.\n", True, 130, b"", b"")   # (what it did: the checkpoint, not its sidecar)
    assert sorted(p.name for p in dest.iterdir()) == ["epoch_001.pt"]
