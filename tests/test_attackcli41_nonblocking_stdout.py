"""attackcli41: standard output that is a non-blocking pipe to a slow reader.

A CI runner, or a program sharing the pipe (node, a shell that set ``O_NONBLOCK`` on the
terminal), leaves the descriptor non-blocking; a reader that is slow for a moment then
makes a write answer EAGAIN. attackstream40 made standard error wait for it (``Tail``);
standard output (``stdout_sink.Sink``) took it for a failed disk: ``drivestage ls --json
drive:x | jq …`` stopped half-way with ``Error: cannot write to standard output
(pipe:[…]): Resource temporarily unavailable; send it elsewhere``, exit 1, the listing cut.

The reader here is slow without a sleep: it reads nothing until the pipe is full (its
count of bytes waiting reaches the pipe's size) or the command ended.
"""
from __future__ import annotations

import array
import fcntl
import json
import os
import subprocess
import termios
import time

import pytest

from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)

_F_GETPIPE_SZ = 1032


def _waiting(fd: int) -> int:
    """Bytes in the pipe read from ``fd``, not read yet."""
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


def _read_once_full(child, r: int) -> bytes:
    """Everything ``child`` writes to the pipe ``r`` reads from, read only once the pipe is
    full (or the child ended first)."""
    size = fcntl.fcntl(r, _F_GETPIPE_SZ)
    deadline = time.monotonic() + 120
    while _waiting(r) < size and child.poll() is None:   # (bounded: the deadline)
        assert time.monotonic() < deadline, "the pipe never filled and the command never ended"
        time.sleep(0.005)   # (a poll of the count: no event says a pipe is full)
    got = []
    while True:
        chunk = os.read(r, 1 << 16)
        if not chunk:
            return b"".join(got)
        got.append(chunk)


@pytest.mark.parametrize("unbuffered", [False, True])   # (True: the layer under the text is raw)
def test_ls_json_into_a_non_blocking_pipe_waits_for_its_slow_reader(
        emulator, drive_env, local_state, unbuffered):
    names = [f"file-{i:04d}-with-a-name-long-enough-to-fill-a-pipe.txt" for i in range(600)]
    for name in names:
        emulator.add_file(f"data/{name}", b"x")
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        child = cli_server().popen(["ls", "--json", "drive:data"], env=dict(os.environ, **({"PYTHONUNBUFFERED": "1"} if unbuffered else {})),
                                   stdout=w, stderr=PIPE, text=True)
    finally:
        os.close(w)
    try:
        out = _read_once_full(child, r)
    finally:
        os.close(r)
    err = child.stderr.read()
    assert (child.wait(timeout=120), err) == (0, "")
    assert sorted(e["name"] for e in json.loads(out)) == names
