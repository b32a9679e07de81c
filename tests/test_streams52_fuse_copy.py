"""streams52: Ctrl-C while the FUSE mount a pull copies from stops answering mid-copy.

The copy's read is in a download's stream thread (streams.Pass), not in the thread that
waits for it: its pass, closed by the Ctrl-C, joined it 5 s at most (_STREAMS_END), and the
pull said "Interrupted." only then, the pool's "waiting for the transfers under way to
stop" warning racing that bound (hang51's "Left"). Now the stream thread is left in such a
read (:func:`drivestage.pool.leavable`) a second after the pass's close, as a thread of the
pool is: "Interrupted." said while the mount still hangs, well before the old bound, then
exit 130 once the mount answers (the kernel holds the process until then: see
tests/test_hang51_fuse_ctrl_c.py). Nothing half done is declared done: the copy stays a
partial, never under its final name. Both fail on main 8704ac72 (the warning first, 5 s on).
"""
from __future__ import annotations

from _drivemount import working_drive_mount  # noqa: F401  (a fixture)
from _hung_pull import ctrl_c_while_hung
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

from drivestage import stream_threads


def _left(folder) -> list[str]:
    """What ``folder`` holds (a partial's random tag as ``*``), its state folder's too."""
    return sorted([".".join(p.name.split(".")[:3] + ["*", p.name.rsplit(".", 1)[1]])
                   if p.name.endswith((".partial", ".ranges")) else p.name
                   for p in folder.iterdir()] +
                  [f".drivestage/{p.name}" for p in (folder / ".drivestage").iterdir()])


#: a.txt's copy a partial with its record, no stamp: nothing said staged.
PARTIAL = [".a.txt.*.partial", ".a.txt.*.ranges", ".drivestage"]


def test_ctrl_c_during_the_copy_of_a_folders_file_from_a_hung_mount(working_drive_mount,
                                                                   tmp_path):
    copying = lambda out: (out / "ds").exists()   # noqa: E731  (past the walk's hashes)
    said = ctrl_c_while_hung(working_drive_mount, tmp_path, copying)
    assert said[:4] == ("Interrupted.\n", True, 130, "")
    assert said.seconds < stream_threads._STREAMS_END, said   # (not the old bound's end)
    assert _left(tmp_path / "out" / "ds") == PARTIAL


def test_ctrl_c_during_the_copy_of_one_file_from_a_hung_mount(working_drive_mount, tmp_path):
    copying = lambda out: out.exists()   # noqa: E731  (past the source's hash)
    said = ctrl_c_while_hung(working_drive_mount, tmp_path, copying, src="ds/a.txt")
    assert said[:4] == ("Interrupted.\n", True, 130, "")
    assert said.seconds < stream_threads._STREAMS_END, said
    assert _left(tmp_path / "out") == PARTIAL
