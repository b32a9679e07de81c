"""streams52: Ctrl-C while the FUSE mount a pull copies from stops answering mid-copy.

- The copy's read is in a download's stream thread (streams.Pass), not in the thread that
  waits for it: its pass, closed by the Ctrl-C, joined it 5 s at most (_STREAMS_END), and
  the pull said "Interrupted." only then (for one file: twice over, 10 s), the pool's
  "waiting for the transfers under way to stop" warning racing that bound (hang51's
  "Left"). Now the stream thread is left in such a read (:func:`drivestage.pool.leavable`) a
  second after the pass's close, as a thread of the pool is.
- The main thread's own reads: a pull of one file hashes it (LocalDirStore._file_md5), a
  zip's end is fetched first by the thread that pulls it (Pass.fetch_now), and a command's
  first look at a local SRC stats it (remote.open_store): a read or stat of a hung mount
  there held every Ctrl-C until the mount answered (no signal breaks it, and Python's
  handler runs only once it returns). Now they run aside (:func:`drivestage.pool.aside`),
  in a thread the main thread leaves as the pool's are left.

Each: "Interrupted." said while the mount still hangs, well before the old bound, then exit
130 once the mount answers (the kernel holds the process until then: see
tests/test_hang51_fuse_ctrl_c.py). Nothing half done is declared done: a copy stays a
partial, never under its final name. All fail on main 8704ac72: the folder's copy says the
warning first (5 s on); the one file's hash, the first look and the zip's end say nothing
until the mount answers. The last test is a check, not a fix (it passes on main): a push's
write into a hung mount is never left, and the push says what it did once the mount answers.
"""
from __future__ import annotations

import io
import os
import signal
import threading
import zipfile

from _drivemount import GETATTR, LOOKUP, WRITE, working_drive_mount  # noqa: F401  (a fixture)
from _forkcli import PIPE, cli_server
from _hung_pull import ctrl_c_while_hung
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

from drivestage import stream_threads

INTERRUPTED = ("Interrupted.\n", True, 130, "")   # said, the mount still hung; exit; no more


def _left(folder) -> list[str]:
    """What ``folder`` holds (a partial's random tag as ``*``), its state folder's too."""
    return sorted([".".join(p.name.split(".")[:3] + ["*", p.name.rsplit(".", 1)[1]])
                   if p.name.endswith((".partial", ".ranges")) else p.name
                   for p in folder.iterdir()] +
                  [f".drivestage/{p.name}" for p in (folder / ".drivestage").iterdir()])


def test_ctrl_c_during_the_copy_of_a_folders_file_from_a_hung_mount(working_drive_mount,
                                                                   tmp_path):
    copying = lambda out: (out / "ds").exists()   # noqa: E731  (past the walk's hashes)
    said = ctrl_c_while_hung(working_drive_mount, tmp_path, copying)
    assert said[:4] == INTERRUPTED
    assert said.seconds < stream_threads._STREAMS_END, said   # (not the old bound's end)
    # a.txt's copy a partial with its record, no stamp: nothing said staged.
    assert _left(tmp_path / "out" / "ds") == [".a.txt.*.partial", ".a.txt.*.ranges",
                                              ".drivestage"]


def test_ctrl_c_during_the_hash_of_one_file_on_a_hung_mount(working_drive_mount, tmp_path):
    said = ctrl_c_while_hung(working_drive_mount, tmp_path, lambda out: True, src="ds/a.txt")
    assert said[:4] == INTERRUPTED
    assert not (tmp_path / "out").exists()


def test_ctrl_c_during_the_first_look_at_a_hung_mount(working_drive_mount, tmp_path):
    """The mount hangs at the pull's first look at SRC (open_store: the realpath of SRC as
    it looks for Colab's mount point), after the bounded probe of the mount (lost_mount:
    the first caller, waited for 0.5 s at most) got its answers."""
    mount = working_drive_mount
    probe: list[int] = []

    def past_the_probe(out) -> bool:
        probe[:] = probe or [mount.caller]
        return mount.caller != probe[0]

    said = ctrl_c_while_hung(mount, tmp_path, past_the_probe, at=(LOOKUP, GETATTR))
    assert said[:4] == INTERRUPTED
    assert not (tmp_path / "out").exists()


def test_ctrl_c_during_the_fetch_of_a_zips_end_on_a_hung_mount(working_drive_mount,
                                                              tmp_path):
    """A zip smaller than the end fetched first: that fetch, by the main thread, reads it
    all (no stream)."""
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as z:
        z.writestr("m.txt", b"m" * 5000)
    fetching = lambda out: out.exists()   # noqa: E731  (past the zip's hash)
    said = ctrl_c_while_hung(working_drive_mount, tmp_path, fetching, src="ds/x.zip",
                             more=["-x"], files={"x.zip": blob.getvalue()})
    assert said[:4] == INTERRUPTED
    assert _left(tmp_path / "out") == [".drivestage", ".x.zip.*.partial", ".x.zip.*.ranges"]


def test_ctrl_c_during_a_push_whose_write_to_a_drive_mount_hangs(working_drive_mount,
                                                                 tmp_path):
    """A write is never left (a write left half done is no "nothing half done"): the push
    ends once the mount takes the write, then stops, exit 130, and declares nothing pushed:
    no checkpoint under its name on the mount (nor on Drive), the local files as they were."""
    mount = working_drive_mount
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"1" * 3000)
    (src / "epoch_002.pt").write_bytes(b"2" * 3000)
    hung = threading.Event()

    def arriving(opcode: int) -> None:
        if opcode == WRITE and not hung.is_set():
            mount.hang()
            hung.set()

    mount.arriving = arriving
    dest = mount.point / "MyDrive" / "logs"
    proc = cli_server().popen(["push", str(src), str(dest), "--jobs", "1"],
                              env=dict(os.environ), stdout=PIPE, stderr=PIPE)
    try:
        assert hung.wait(60), proc.communicate(timeout=60)
        proc.send_signal(signal.SIGINT)   # (pending until the write returns: no sleep)
        mount.answer()
        out, err = proc.communicate(timeout=30)
    finally:
        mount.answer()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    # (the push's warning that DEST is inside a Drive mount, then the Ctrl-C's line)
    said = [line.split(":")[0] for line in err.decode().splitlines()]
    assert (proc.returncode, said, out) == (130, ["WARNING drivestage.cli.push",
                                                  "Interrupted."], b"")
    mount.flush()
    assert [p for p in mount.cached() if p.endswith(".pt")] == [], mount.cached()
    assert sorted(os.listdir(src)) == ["epoch_001.pt", "epoch_002.pt"]
