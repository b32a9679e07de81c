"""The private copies a push sends sidecars and changing logs from, in a temporary folder
that another container shares (attacksync34)."""
from __future__ import annotations

import os
import tempfile
import time

from _checkpoints import save
from _cli import ok
from _drive_state import live_md5s
from drivestage import temps

FOLDER = "Models/logs"
T0 = 1764600000.0
DAY = temps.FOREIGN_STALE_S


def _gone_pid() -> int:
    """A process id that no process has: above any Linux ``pid_max`` (2**22)."""
    return 4194999


def test_a_copy_another_container_is_sending_from_is_left(emulator, drive_env, local_state,
                                                          tmp_path, monkeypatch):
    """Two containers (Docker, a Slurm job's) share one /tmp, each pushing a run. A push
    removed every ``.drivestage-sidecar-<pid>-….json`` whose pid did not run in its own
    pid namespace: the other container's copies, while its uploads read them (its sidecar
    then "disappeared before it was uploaded", skipped without a word, and its checkpoint's
    old copy kept for ever). A copy is named with its namespace now, and one of another
    namespace (or of an older drivestage, which named none) goes only once it is a day
    old, as the atomic writes' temporary files do (:mod:`drivestage.temps`); a dead
    process's copy of this namespace still goes at once."""
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    ok("push", str(src), f"drive:{FOLDER}")
    second = save(str(src), "last", 2, T0 + 60)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    gone = _gone_pid()
    other = "0123abcd" if temps.namespace_tag() != "0123abcd" else "4567cdef"
    names = {
        # another container's, being sent now: this drivestage's name, an older one's
        "theirs": f".drivestage-sidecar-{other}.{gone}-ab12cd34.json",
        "theirs, older drivestage": f".drivestage-sidecar-{gone}-ef56gh78.json",
        # left a day ago by a killed push somewhere: gone
        "theirs, a day old": f".drivestage-sidecar-{other}.{gone}-ij90kl12.json",
        "older drivestage's, a day old": f".drivestage-sidecar-{gone}-mn34op56.json",
        # this namespace's: a killed push's goes at once, a running one's stays
        "ours, dead": f".drivestage-sidecar-{temps.namespace_tag()}.{gone}-qr78st90.json",
        "ours, running": f".drivestage-sidecar-{temps.namespace_tag()}.{os.getpid()}-"
                         "uv12wx34.json",
    }
    for label, name in names.items():
        (scratch / name).write_text("{}")
        if "a day old" in label:
            then = time.time() - DAY - 60
            os.utime(scratch / name, (then, then))

    ok("push", str(src), f"drive:{FOLDER}")

    assert sorted(os.listdir(scratch)) == sorted(
        names[k] for k in ("theirs", "theirs, older drivestage", "ours, running"))
    assert live_md5s(emulator, FOLDER) == second
