"""``python -m drivestage ARGS`` in a child process that starts with drivestage and its Drive
stack already imported: forked from a server process that imported them once.

A sweep that starts a fresh ``python -m drivestage`` at each step (to SIGKILL it at the k-th
request) paid the interpreter's start and the imports each time: 0.5 s on a quiet machine,
2-3 s on a loaded one, most of each step. A child forked from this server runs the same
code from ``drivestage/__main__.py`` on, in a process of its own, with the environment, the
working folder, the arguments and the standard streams the caller gives it, and exits as
``python -m`` does (its code; killed by a signal: that signal).

    cli = cli_server()                       # one server per test process (xdist worker)
    proc = cli.popen(["push", src, "drive:runs"], env=env, stdout=PIPE, stderr=PIPE)
    proc.pid, proc.poll(), proc.wait(timeout), proc.send_signal(sig), proc.communicate()

``proc`` is what a ``subprocess.Popen`` is for these uses; the child is the server's
grandchild (a small waiter process between them reports its exit status), so it is not
this process's to ``waitpid``. The server is started before any test's own leak check
(a session fixture, :func:`cli_server` at first use) and lives as long as this process;
the waiter and the child carry this process's leak-check marker, so one left running is
found and killed as any other (tests/conftest.py).

What the server imported was imported under its environment and open-file limit: a child
asked for with another value of what an import reads (:data:`IMPORT_TIME_VARS`, such as
``HTTPLIB2_CA_CERTS``; the open-file limit) runs a fresh interpreter instead, exec'd in the
forked child.

Run as a script, this module is the server: ``python tests/_forkcli.py SOCKET``.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any, Optional

#: What the server imports before it forks any child: the CLI and the whole Drive stack a
#: pull or a push loads (what `python -m drivestage push` imported by its first request).
PRELOAD = ("drivestage.entry", "drivestage.cli", "drivestage.cli.group", "drivestage.cli.pull",
           "drivestage.cli.push", "drivestage.cli.mirror", "drivestage.drive", "drivestage.stage",
           "drivestage.upload_tree", "drivestage.mirror", "googleapiclient.discovery",
           "googleapiclient.http", "pydrive2.drive", "pydrive2.auth", "httplib2")

#: Variables that what :data:`PRELOAD` imports reads as it is imported (httplib2's CA_CERTS,
#: oauth2client's and google-auth's metadata server), and the interpreter's own: a child
#: asked for with one of them other than the server had is not forked from the server's
#: imports but runs a fresh interpreter (exec), as a plain Popen would.
IMPORT_TIME_VARS = ("HTTPLIB2_", "GCE_", "NO_GCE_CHECK", "PYTHON", "LD_")

#: Where the server's environment names a file by this variable, each child's CPU seconds
#: (user + system, its own waited-for children's included) are appended to it, one line
#: each: the children are not the test process's to wait for, so a measurement of its
#: ``RUSAGE_CHILDREN`` (``/usr/bin/time``) misses them.
CPU_LOG = "FORKCLI_CPU_LOG"

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL


# --------------------------------------------------------------------------- the server

_IMPORTED_UNDER: dict = {}   # the server's environment as it imported PRELOAD


def _imported_otherwise(env: dict, nofile: list) -> bool:
    """Whether ``env`` or the open-file limit ``nofile`` differ from those the server
    imported under in what an import reads (drivestage.stamp_cache sizes itself by the
    open-file limit at its import)."""
    import resource

    if tuple(nofile) != resource.getrlimit(resource.RLIMIT_NOFILE):
        return True
    names = set(env) | set(_IMPORTED_UNDER)
    return any(env.get(n) != _IMPORTED_UNDER.get(n) for n in names
               if n.startswith(IMPORT_TIME_VARS))


def _run_cli(args: list[str], env: dict, cwd: str, nofile: list,
             script: Optional[str] = None) -> int:
    """In the forked child: what ``python -m drivestage ARGS`` runs (``python -c SCRIPT
    ARGS`` with ``script``), and its exit code."""
    import atexit
    import runpy
    import traceback

    os.chdir(cwd)
    if _imported_otherwise(env, nofile):
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, tuple(nofile))
        _unblock_sigint(signal.SIG_DFL)   # (the fresh interpreter installs its own)
        os.execve(sys.executable, [sys.executable, *(["-c", script] if script is not None
                                                     else ["-m", "drivestage"]), *args], env)
    os.environ.clear()
    os.environ.update(env)
    import drivestage
    if script is None:
        sys.path[0] = cwd   # (`python -m`'s first entry: the working folder, not tests/)
        sys.argv = [os.path.join(os.path.dirname(drivestage.__file__), "__main__.py"), *args]
    else:
        sys.path[0] = ""    # (`python -c`'s)
        sys.argv = ["-c", *args]
    code: Any = 0
    try:
        _unblock_sigint(signal.getsignal(signal.SIGINT))
        if script is None:
            runpy.run_module("drivestage", run_name="__main__", alter_sys=True)
        else:
            exec(compile(script, "<string>", "exec"), {"__name__": "__main__",
                                                       "__builtins__": __builtins__})
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        traceback.print_exc()
        code = "SIGINT"
    except BaseException:  # (what an interpreter prints for an uncaught error, exit 1)
        traceback.print_exc()
        code = 1
    # What the interpreter does at its exit: wait for the threads that are not daemons, run
    # the atexit handlers, flush the streams.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    if code is None:
        code = 0
    elif not isinstance(code, int) and code != "SIGINT":
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if code == "SIGINT":   # an uncaught KeyboardInterrupt: the interpreter dies by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    return int(code) & 0xFF


def _unblock_sigint(handler: Any) -> None:
    """In the forked child, as its command is about to run: take SIGINT again (blocked by
    :func:`_serve_one` since before the fork), then let ``handler`` handle it. One that came
    meanwhile, or comes before ``handler`` is in place, ends the child as it ends a fresh
    interpreter that has not installed its handler yet: killed by SIGINT, without a word
    (the child stands for ``python -m drivestage`` from its exec on). Where SIGINT is
    ignored (the server started under ``nohup``, a background job) it stays so."""
    if handler is signal.SIG_IGN:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        return
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, handler)


def _serve_one(conn: socket.socket, listener: socket.socket) -> None:
    """In a waiter process: fork the child the request on ``conn`` asks for, tell its pid,
    wait for it, tell its exit status."""
    import resource

    msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    request = json.loads(msg.decode())
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # SIGINT blocked across the fork, and in the child until its command is about to run
    # (_run_cli): one sent the moment the caller has the pid came while the child was still
    # in os.fork(), whose after-fork step clears the signals Python had noted but not yet
    # handled: the Ctrl-C was lost and the command ran to its end, exit 0 (5 of 16 runs,
    # streams52); one a moment later raised KeyboardInterrupt in this setup (a traceback of
    # this file, exit 1). Kept pending, it is taken as a fresh interpreter would take it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    pid = os.fork()
    if pid == 0:
        try:
            listener.close()
            conn.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            # sys.stdin, stdout and stderr stay the interpreter's own (made at its start, as
            # any fresh one's with this environment: PYTHONUNBUFFERED...), now on these
            # descriptors (the server never read its stdin: nothing of it is buffered).
            for name, value in request.get("limits", {}).items():
                resource.setrlimit(getattr(resource, name), tuple(value))
            # A fresh process's hang-up and stop signals, whatever the server inherited: one
            # started while a test of the worker had SIGHUP ignored in-process (a program
            # stopped ignores the signals as it ends) passed SIG_IGN to every child, which
            # then took itself for one under nohup and ignored SIGHUP (CI: a pull -x ran on
            # through 30 s of SIGHUPs). A test that wants nohup says so in its ``script``.
            for signum in (signal.SIGHUP, signal.SIGTERM):
                signal.signal(signum, signal.SIG_DFL)
            code = _run_cli(request["args"], request["env"], request["cwd"],
                            request["nofile"], request.get("script"))
        except BaseException:   # (the child's own failure, on its stderr)
            import traceback
            os.write(2, traceback.format_exc().encode())
            code = 1
        os._exit(code)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    for fd in fds:
        os.close(fd)
    # A pidfd of the child, opened while it cannot be reaped (this process waits for it only
    # below): the test process signals the child through it, never a pid that may by then
    # name another process (pid_max 32768 here: pids wrap in minutes under the suite).
    try:
        pidfds = [os.pidfd_open(pid)]
    except (AttributeError, OSError):   # (Python < 3.9, Linux < 5.3: by pid, as before)
        pidfds = []
    socket.send_fds(conn, [json.dumps({"pid": pid}).encode() + b"\n"], pidfds)
    for fd in pidfds:
        os.close(fd)
    _, status, usage = os.wait4(pid, 0)
    log = os.environ.get(CPU_LOG)
    if log:   # (appends of one short line each: whole, with O_APPEND, from any process)
        with open(log, "a") as fh:
            fh.write(f"{usage.ru_utime + usage.ru_stime:.3f}\n")
    conn.sendall(json.dumps({"status": status}).encode() + b"\n")


def serve(path: str) -> None:
    """Import :data:`PRELOAD`, then fork a waiter for each connection on the UNIX socket
    ``path`` until stdin (a pipe from the test process) ends."""
    import gc
    import importlib
    import selectors

    _IMPORTED_UNDER.update(os.environ)   # (before: an import may set some, cv2 does)
    for name in PRELOAD:
        importlib.import_module(name)
    # What the imports made lives in every child: no child's collection walks it again.
    gc.collect()
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # waiters reaped by the kernel
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(sys.stdin, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is sys.stdin:
                return   # the test process is gone (or done)
            conn, _ = listener.accept()
            if os.fork() == 0:
                try:
                    _serve_one(conn, listener)
                finally:
                    os._exit(0)
            conn.close()


# --------------------------------------------------------------------------- the client

class Server:
    """A running server (see the module doc); :meth:`popen` starts a child."""

    def __init__(self, env: Optional[dict] = None) -> None:
        """``env``: the server's environment (this process's by default): children asked
        for with another value of what an import reads run a fresh interpreter."""
        self._dir = tempfile.mkdtemp(prefix="drivestage-forkcli-")
        self.path = os.path.join(self._dir, "s")
        self._proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), self.path],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        assert line == b"ready\n", f"the CLI fork server did not start: {line!r}"

    def popen(self, args: list[str], env: Optional[dict] = None, cwd: Optional[str] = None,
              stdin: Any = DEVNULL, stdout: Any = None, stderr: Any = None,
              limits: Optional[dict] = None, text: bool = False,
              script: Optional[str] = None) -> "Child":
        """``subprocess.Popen([sys.executable, "-m", "drivestage", *args], env=env, cwd=cwd,
        stdin=..., stdout=..., stderr=..., text=...)``, forked from the server; ``PIPE``,
        ``DEVNULL``, None (this process's) or a descriptor / file for each stream.
        ``limits``: resource limits the child sets first ({"RLIMIT_AS": (soft, hard)}, what
        a ``preexec_fn`` would). ``text``: the pipes read and write ``str`` (UTF-8), and
        :meth:`Child.communicate` returns ``str``. ``script``: ``[sys.executable, "-c",
        script, *args]`` instead (a script that sets up what it needs, an audit hook that
        kills it at a moment, and then runs drivestage's ``main``)."""
        return Child(self, list(args), dict(os.environ if env is None else env),
                     os.getcwd() if cwd is None else str(cwd), stdin, stdout, stderr,
                     limits or {}, text, script)

    def run(self, args: list[str], env: Optional[dict] = None, cwd: Optional[str] = None,
            timeout: Optional[float] = None, text: bool = False,
            limits: Optional[dict] = None,
            script: Optional[str] = None) -> subprocess.CompletedProcess:
        """``subprocess.run([sys.executable, "-m", "drivestage", *args], capture_output=True,
        ...)`` with a forked child (``limits``, ``script``: see :meth:`popen`)."""
        child = self.popen(args, env=env, cwd=cwd, stdout=PIPE, stderr=PIPE, text=text,
                           limits=limits, script=script)
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise
        return subprocess.CompletedProcess(args, child.returncode, out, err)

    @property
    def closed(self) -> bool:
        return self._proc.stdin is None or self._proc.stdin.closed

    def close(self) -> None:
        if self._proc.poll() is None and not self.closed:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        assert self._proc.stdout is not None
        self._proc.stdout.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.rmdir(self._dir) if os.path.isdir(self._dir) else None


def _stream(spec: Any, mode: str) -> tuple[int, Optional[int], Optional[int]]:
    """(the descriptor to send, this side's end of a pipe or None, one to close after)."""
    if spec is PIPE:
        r, w = os.pipe()
        return (r, w, r) if mode == "r" else (w, r, w)
    if spec is DEVNULL:
        fd = os.open(os.devnull, os.O_RDWR)
        return fd, None, fd
    if spec is None:
        return (0 if mode == "r" else 1 if mode == "w" else 2), None, None
    return (spec if isinstance(spec, int) else spec.fileno()), None, None


class Child:
    """A forked ``python -m drivestage`` (or ``python -c SCRIPT``): what a
    ``subprocess.Popen`` offers for it."""

    def __init__(self, server: Server, args: list[str], env: dict, cwd: str,
                 stdin: Any, stdout: Any, stderr: Any, limits: dict, text: bool = False,
                 script: Optional[str] = None) -> None:
        # (What subprocess.Popen reports to the audit hooks: tests/conftest.py looks for
        # the processes a test left running when it started one.)
        import resource

        sys.audit("subprocess.Popen", sys.executable,
                  ["-c", script, *args] if script is not None else ["-m", "drivestage", *args],
                  cwd, env)
        self.args = args
        self.returncode: Optional[int] = None
        ends = [_stream(stdin, "r"), _stream(stdout, "w"), _stream(stderr, "e")]
        ours = [end for _, end, _ in ends]
        try:
            self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._conn.connect(server.path)
            nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
            socket.send_fds(self._conn, [json.dumps({"args": args, "env": env, "cwd": cwd,
                                                     "nofile": nofile, "limits": limits,
                                                     "script": script}).encode()],
                            [fd for fd, _, _ in ends])
        finally:
            for _, _, close in ends:
                if close is not None:
                    os.close(close)
        mode = {"encoding": "utf-8"} if text else {}   # (Popen's text=True: str, UTF-8 here)
        self.stdin: Optional[IO[Any]] = (os.fdopen(ours[0], "w" if text else "wb", **mode)
                                         if ours[0] is not None else None)
        self.stdout: Optional[IO[Any]] = (os.fdopen(ours[1], "r" if text else "rb", **mode)
                                          if ours[1] is not None else None)
        self.stderr: Optional[IO[Any]] = (os.fdopen(ours[2], "r" if text else "rb", **mode)
                                          if ours[2] is not None else None)
        self._empty: Any = "" if text else b""
        self._waiting = threading.Lock()   # one thread reads the waiter's answer at a time
        self._pidfd_lock = threading.Lock()   # a signal is not sent through a closed pidfd
        self._pidfd: Optional[int] = None
        first, pidfds, _, _ = socket.recv_fds(self._conn, 4096, 1)
        if pidfds:
            self._pidfd = pidfds[0]
        self._buf = first
        line = self._line(None)
        assert line, "the CLI fork server did not start the child"
        self.pid: int = json.loads(line)["pid"]

    def _line(self, timeout: Optional[float]) -> Optional[bytes]:
        """The waiter's next line (b"" at its end), or None if none came in ``timeout``."""
        import select

        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._conn], [], [], left)[0]:
                return None
            data = self._conn.recv(4096)
            if not data:
                return b""
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def _status(self, timeout: Optional[float]) -> Optional[int]:
        # As Popen: a poll while another thread waits for the end answers None.
        if not self._waiting.acquire(timeout != 0.0):
            return self.returncode
        try:
            return self._status_locked(timeout)
        finally:
            self._waiting.release()

    def _status_locked(self, timeout: Optional[float]) -> Optional[int]:
        if self.returncode is None:
            line = self._line(timeout)
            if line is None:
                return None
            if not line:   # the waiter died without a word (never: it is not killed)
                self.returncode = -signal.SIGKILL
            else:
                self.returncode = os.waitstatus_to_exitcode(json.loads(line)["status"])
            self._conn.close()
            self._close_pidfd()
        return self.returncode

    def _close_pidfd(self) -> None:
        with self._pidfd_lock:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None

    def __del__(self) -> None:   # (a child whose end was never read: its pidfd not left open)
        if getattr(self, "_pidfd_lock", None) is not None:
            self._close_pidfd()

    def poll(self) -> Optional[int]:
        return self._status(0.0)

    def wait(self, timeout: Optional[float] = None) -> int:
        code = self._status(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(["drivestage", *self.args], timeout or 0)
        return code

    def send_signal(self, sig: int) -> None:
        """``sig`` to the child, unless it has ended: through its pidfd, which names that
        process only (reaped by its waiter, the child is not signalled, whatever process
        has its pid by then); where pidfds are missing, by pid while its end is unknown."""
        from _pidfds import send

        with self._pidfd_lock:
            if self.returncode is None:
                send(self._pidfd, self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def communicate(self, timeout: Optional[float] = None) -> tuple[Any, Any]:
        """What the child writes to its piped stdout and stderr until it ends (b"" for one
        not piped; ``str`` with ``text``); then its exit code is in :attr:`returncode`."""
        got: dict = {}
        readers = []
        for name in ("stdout", "stderr"):
            pipe = getattr(self, name)
            if pipe is None:
                got[name] = self._empty
                continue

            def read(pipe=pipe, name=name) -> None:
                got[name] = pipe.read()
                pipe.close()
            readers.append(threading.Thread(target=read, daemon=True))
            readers[-1].start()
        if self.stdin is not None:
            self.stdin.close()
        deadline = None if timeout is None else time.monotonic() + timeout
        for reader in readers:
            reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(["drivestage", *self.args], timeout or 0)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return got["stdout"], got["stderr"]


_server: Optional[Server] = None


def cli_server(env: Optional[dict] = None) -> Server:
    """This process's server, started at first use (see the module doc; ``env``: see
    :class:`Server`)."""
    global _server
    if _server is None or _server.closed:
        _server = Server(env)
        import atexit
        atexit.register(_server.close)
    return _server


if __name__ == "__main__":
    serve(sys.argv[1])
