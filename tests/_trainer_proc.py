"""``python -m trainer ARGS`` (or a bench script) in a process of its own, started without
the interpreter's imports: forked from multiprocessing's fork server with torch (and what a
training run imports of third parties) already loaded.

A trainer process of a test paid 3-4 s of CPU to import torch before it did anything, more
on a shared machine (tests/test_lease36_two_trainers.py starts seven: a third of its time).
What a test does with the process is what it did with a ``subprocess.Popen``: the same
command line (``trainer/__main__.py`` run as ``__main__``), its own environment, current
folder, stdout and stderr files; real signals to its pid; its exit code as Popen says it
(``-N``: killed by signal N). Our own modules are imported in the child, after its
environment is set (none is preloaded by this helper). The interpreter's end is the same:
non-daemon threads are waited for, then ``atexit``'s functions run, then the streams are
flushed.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import socket
import subprocess
import sys
import threading
from typing import Mapping, Optional, Sequence

from _pidfds import open_pidfd, send

#: Third-party modules a training run imports (what a fresh interpreter spends its start on).
#: torch._dynamo: torch imports it as the run builds its optimizer (Optimizer.__init__ is
#: wrapped by torch._disable_dynamo): 1.1 s of CPU in each child, half of a tiny run's. The
#: rest as the run's callbacks and evaluation import them (plots, TensorBoard, NMS).
PRELOAD = ["torch", "numpy", "cv2", "yaml", "click", "googleapiclient.discovery", "pydrive2.drive",
           "torch._dynamo", "torch.utils.tensorboard", "torchvision.ops", "matplotlib.figure",
           "matplotlib.backends.backend_agg"]


#: ``_main``'s stdout or stderr: the descriptor it was forked with (a client's, :func:`serve`).
KEEP = "<kept>"


def _main(args: Sequence[str], env: Mapping[str, str], cwd: str, stdout: Optional[str],
          stderr: Optional[str], script: Optional[str] = None) -> None:
    """The child: ``python -m trainer ARGS`` (or ``python SCRIPT ARGS``) as the interpreter
    runs it."""
    import atexit
    import gc
    import runpy
    import threading

    # The server's objects (torch's 300,000) are never garbage: no collection of the child
    # walks them, the trainer's own at its end included (trainer/entry.py: 0.2 s of CPU).
    gc.freeze()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, stdout), (2, stderr)):
        if path == KEEP:
            continue
        target = os.open(path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace",
                      closefd=False)
    threads = env.get("OMP_NUM_THREADS")
    if threads and "torch" in sys.modules:   # (read as the server imported torch: set again)
        sys.modules["torch"].set_num_threads(int(threads))
    sys.argv = [script or "trainer", *args]
    if script is not None:   # (`python SCRIPT`'s first entry: the script's folder)
        sys.path[0] = os.path.dirname(os.path.abspath(script))
    code: object = 0
    try:
        if script is None:
            runpy.run_module("trainer", run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    except BaseException:   # (the interpreter prints it and exits 1)
        import traceback

        traceback.print_exc()
        code = 1
    threading._shutdown()   # type: ignore[attr-defined]   # (non-daemon threads, as at exit)
    atexit._run_exitfuncs()
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


class TrainerProcess:
    """What a test uses of a ``subprocess.Popen`` of ``python -m trainer``."""

    def __init__(self, proc: mp.process.BaseProcess):
        self._proc = proc
        self.pid: int = proc.pid  # type: ignore[assignment]
        # The child is the fork server's, reaped there: its end is known here only once the
        # server says so, and meanwhile its pid may be another process's (pid_max 32768
        # here: pids wrap in minutes). A pidfd opened now, as it starts (it runs for
        # seconds), names this child only; by pid where pidfds are missing.
        self._lock = threading.Lock()
        self._pidfd = open_pidfd(self.pid)

    @property
    def returncode(self) -> Optional[int]:
        return self._ended()

    def poll(self) -> Optional[int]:
        return self._ended()

    def wait(self, timeout: Optional[float] = None) -> int:
        self._proc.join(timeout)
        code = self._ended()
        if code is None:
            raise subprocess.TimeoutExpired(["trainer"], timeout or 0)
        return code

    def _ended(self) -> Optional[int]:
        code = self._proc.exitcode
        if code is not None:
            self._close_pidfd()
        return code

    def _close_pidfd(self) -> None:
        with self._lock:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None

    def __del__(self) -> None:
        if getattr(self, "_lock", None) is not None:
            self._close_pidfd()

    def send_signal(self, sig: int) -> None:
        """``sig`` to the child unless it has ended (through its pidfd: a child reaped by
        the server is not signalled, whatever process has its pid by then)."""
        with self._lock:
            if self._proc.exitcode is None:
                send(self._pidfd, self.pid, sig)

    def terminate(self) -> None:
        import signal

        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        import signal

        self.send_signal(signal.SIGKILL)


def start_trainer(args: Sequence[str], env: Optional[Mapping[str, str]] = None,
                  stdout: Optional[str] = None, stderr: Optional[str] = None,
                  cwd: Optional[str] = None) -> TrainerProcess:
    """``python -m trainer ARGS`` with ``env`` (default: this process's), its stdout and
    stderr appended to the files named (default: /dev/null)."""
    return _start(args, env, stdout, stderr, cwd, None)


def start_script(script: str, args: Sequence[str], env: Optional[Mapping[str, str]] = None,
                 stdout: Optional[str] = None, stderr: Optional[str] = None,
                 cwd: Optional[str] = None) -> TrainerProcess:
    """``python SCRIPT ARGS`` (a bench script that trains), as :func:`start_trainer`."""
    return _start(args, env, stdout, stderr, cwd, str(script))


def _start(args: Sequence[str], env: Optional[Mapping[str, str]], stdout: Optional[str],
           stderr: Optional[str], cwd: Optional[str], script: Optional[str]) -> TrainerProcess:
    mp.set_forkserver_preload(PRELOAD)   # (no effect where the server already runs)
    ctx = mp.get_context("forkserver")
    proc = ctx.Process(target=_main, name="trainer-child",
                       args=(list(args), dict(os.environ if env is None else env),
                             cwd or os.getcwd(), stdout, stderr, script))
    proc.start()
    return TrainerProcess(proc)


def _serve_one(conn: socket.socket, listener: socket.socket) -> None:
    """In a waiter process: fork ``python -m trainer ARGS`` on the client's standard streams
    as ``conn`` asks (tests/_forkrun.py), tell its pid, wait for it, tell its exit status."""
    import json
    import signal

    msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    request = json.loads(msg.decode())
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # (the server's SIG_IGN: no status to wait for)
    pid = os.fork()
    if pid == 0:
        listener.close()
        conn.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        _main(request["args"], request["env"], request["cwd"], KEEP, KEEP)   # (exits)
    for fd in fds:
        os.close(fd)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    conn.sendall(json.dumps({"status": status}).encode() + b"\n")


def _serve(path: str) -> None:
    """Forked from the fork server: a waiter for each connection on the UNIX socket ``path``."""
    import signal

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".new")
    listener.listen(16)
    os.rename(path + ".new", path)   # (there once it listens: a client never finds it refusing)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # waiters reaped by the kernel
    while True:
        conn, _ = listener.accept()
        if os.fork() == 0:
            try:
                _serve_one(conn, listener)
            except BaseException:   # (the waiter's own failure: the client says it ended)
                import traceback

                traceback.print_exc()
            os._exit(0)
        conn.close()


def serve(path: str) -> TrainerProcess:
    """A server of ``python -m trainer`` on the UNIX socket ``path`` for a shell script's
    ``trainer`` (tests/_forkrun.py, the client: ``python tests/_forkrun.py PATH ARGS``),
    each child forked with torch imported as :func:`start_trainer`'s are, on the client's
    standard streams, environment and folder, its exit status the client's. Stop it with
    ``kill()`` (a child it started runs to its end)."""
    import time

    mp.set_forkserver_preload(PRELOAD)
    proc = mp.get_context("forkserver").Process(target=_serve, name="trainer-server", args=(path,))
    proc.start()
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        assert proc.exitcode is None and time.monotonic() < deadline, "the trainer server did not start"
        time.sleep(0.01)
    return TrainerProcess(proc)
