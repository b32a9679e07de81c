"""A push SIGKILLed at each step of taking and giving back its tree locks (lock28): the
kernel lets go of a dead process's flock, and a holder file it leaves names no one. After
each kill, a push into the same folder (and one into the folder above) takes its locks at
once, and no message names the dead process."""
from __future__ import annotations

import os
import signal
import sys
import threading

from drivestage import lock_holders, locks
from drivestage.locks import tree_lock

from _sweep import every

LINEAGE = [("dir|/runs/exp1", "/runs/exp1"), ("dir|/runs", "/runs")]
WATCHED = tuple(os.path.join(os.path.dirname(locks.__file__), name)
                for name in ("locks.py", "lock_holders.py", "lockdir.py"))


def _killed_at(k: int) -> bool:
    """A forked child takes and gives back the tree locks, SIGKILLing itself at the k-th
    line it runs in the lock modules; whether it was killed (else it ran to the end)."""
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child
        seen = [0]

        def trace(frame, event, arg):
            if frame.f_code.co_filename in WATCHED:
                if event == "line":
                    seen[0] += 1
                    if seen[0] == k:
                        os.kill(os.getpid(), signal.SIGKILL)
                return trace
            return None
        sys.settrace(trace)
        try:
            with tree_lock(LINEAGE):
                pass
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _takes_at_once(lineage) -> bool:
    def take() -> None:
        with tree_lock(lineage):
            pass
    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(10)
    return not thread.is_alive()


def test_a_push_killed_at_any_step_of_its_locks_leaves_them_free(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    folder = str(tmp_path / "state" / "locks")
    k, step = 1, every(3)   # (each step a fork: every third one in CI's time; all with
    while _killed_at(k):    #  DRIVESTAGE_TEST_SWEEP=all)
        assert _takes_at_once(LINEAGE), f"locked after a kill at step {k}"
        assert _takes_at_once(LINEAGE[1:]), f"the folder above locked after step {k}"
        for name in os.listdir(folder):
            if name.endswith(".lock"):
                assert lock_holders.described(folder, name) == "", (k, name)
        k += step
    assert k > 20   # (the sweep reached the lock modules' steps, then one ran to its end)
