"""tests/_forkcli.py: a child that has ended and been reaped by its waiter is never signalled,
even while this process has not read its end yet (pid_max is 32768 here: a pid reaped is
soon another process's, another helper's or the suite's own)."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

import pytest

from _signal_env import _cli_server  # noqa: F401  (autouse: the fork server)

NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"


def _reaped_unread(cli):
    """A child that has exited and been reaped by its waiter, its end not read here yet."""
    child = cli.popen([], script="pass")
    # The waiter sends the exit status once wait4 has reaped the child: readable = reaped.
    assert select.select([child._conn], [], [], 30)[0], "the child did not end"
    assert child.returncode is None
    return child


_WATCHED: set = set()   # pids whose os.kill the hook below notes in _KILLS
_KILLS: list = []
_HOOKED: list = []


def _note_kill(event: str, args: tuple) -> None:
    if event == "os.kill" and args[0] in _WATCHED:
        _KILLS.append(args)


def test_a_reaped_child_whose_end_is_unread_gets_no_kill_of_its_pid(_cli_server):
    child = _reaped_unread(_cli_server)
    if not _HOOKED:   # (once: a hook stays for the process; it only looks)
        sys.addaudithook(_note_kill)
        _HOOKED.append(True)
    _WATCHED.add(child.pid)
    _KILLS.clear()
    try:
        child.send_signal(signal.SIGTERM)
    finally:
        _WATCHED.discard(child.pid)
    assert _KILLS == [], f"os.kill sent to the reaped child's pid {child.pid}: {_KILLS}"
    assert child.wait(30) == 0


def _stranger_at(pid: int) -> "subprocess.Popen | None":
    """A process started with pid ``pid`` (the kernel's next pid set by ns_last_pid, other
    processes of the machine racing for it), SIGUSR1 blocked so that one sent stays
    pending where /proc shows it; None if it never got that pid."""
    code = ("import signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1]);"
            " print('ready', flush=True); sys.stdin.read()")
    for _ in range(50):
        with open(NS_LAST_PID, "w") as fh:
            fh.write(str(pid - 1))
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        if proc.pid == pid:
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
            return proc
        proc.kill()
        proc.wait()
    return None


def _pending(pid: int) -> int:
    """The signals pending for ``pid`` (thread's and process's), as a mask."""
    with open(f"/proc/{pid}/status") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    return int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)


def _signalled_past_a_stranger(child) -> None:
    """``child.send_signal(SIGUSR1)`` once a stranger has its pid (``child`` reaped): the
    stranger gets nothing."""
    stranger = _stranger_at(child.pid)
    if stranger is None:
        pytest.skip(f"pid {child.pid} went to another process 50 times")
    try:
        child.send_signal(signal.SIGUSR1)
        assert not _pending(stranger.pid) & (1 << (signal.SIGUSR1 - 1)), \
            "the signal for the reaped child reached the process that took its pid"
    finally:
        stranger.kill()
        stranger.wait()
        assert stranger.stdin is not None and stranger.stdout is not None
        stranger.stdin.close()
        stranger.stdout.close()


@pytest.mark.skipif(not os.access(NS_LAST_PID, os.W_OK),
                    reason="the next pid cannot be chosen here (needs CAP_SYS_ADMIN)")
def test_a_stranger_that_took_a_reaped_childs_pid_is_not_signalled(_cli_server):
    child = _reaped_unread(_cli_server)
    _signalled_past_a_stranger(child)
    assert child.wait(30) == 0


class _NotToldYet:
    """A fork server's child as a test's process sees it before the server tells its end:
    ``pid``, ``exitcode`` None (here: a direct child, reaped by the test as the server
    would)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.pid, self.exitcode = proc.pid, None


@pytest.mark.skipif(not os.access(NS_LAST_PID, os.W_OK),
                    reason="the next pid cannot be chosen here (needs CAP_SYS_ADMIN)")
def test_a_trainer_child_reaped_by_its_server_leaves_the_process_at_its_pid_alone():
    from _trainer_proc import TrainerProcess

    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    child = TrainerProcess(_NotToldYet(proc))   # type: ignore[arg-type]
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(30)   # (ended and reaped: the server's part)
    _signalled_past_a_stranger(child)
