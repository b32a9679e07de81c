"""lefts44: the first signal decides a command's exit (lefts43's rule), in the two cases
lefts43 left at 143: a Ctrl-C then a SIGTERM where

- the Ctrl-C is held back by ``interrupts.deferred()`` (a clean-up it waits for) and the
  SIGTERM comes inside the same deferred block: both noted, the Ctrl-C raised at the block's
  end, and the group said "Interrupted by SIGTERM." (143);
- the Ctrl-C's KeyboardInterrupt was caught by code that cleans up after its ``except``
  block (no KeyboardInterrupt being handled when the SIGTERM comes): 143 likewise.

Each is a command of drivestage's own group (its ``stops_as_ctrl_c``, its error handling,
``python -m drivestage``'s exit) in a child of the fork server, defined by the child's
script: its body is the clean-up that waits, and the test sends the real signals, SIGINT
first, then SIGTERM. Now: "Interrupted." and 130, as a shell reports the first signal."""
from __future__ import annotations

import os
import select
import signal
import time

import pytest

from _forkcli import PIPE, cli_server

#: A command of drivestage's group run as ``python -m drivestage held`` runs it; SIGINT at
#: Python's own handler, as in a terminal (the test runner's may be ignored).
_PROGRAM = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from drivestage import interrupts
from drivestage.cli import main
from drivestage.cli.group import cli
from drivestage.cli.options import stops_as_ctrl_c

def say(what):
    sys.stderr.write(what + "\\n")
    sys.stderr.flush()

def until_told():   # (bounded: the test goes on once it has sent its signals)
    end = time.monotonic() + 60
    while not os.path.exists(os.environ["GO"]) and time.monotonic() < end:
        time.sleep(0.01)

@cli.command("held")
@stops_as_ctrl_c
def held():
%s

sys.argv = ["drivestage", "held"]
main()
"""

#: The Ctrl-C held back by deferred(), the SIGTERM inside the same block.
DEFERRED = """\
    with interrupts.deferred():
        say("cleaning up")
        until_told()
        say("cleaned up")
"""

#: The Ctrl-C caught; the clean-up after the except block, where the SIGTERM comes.
CAUGHT = """\
    cut = False
    try:
        say("working")
        time.sleep(60)
    except KeyboardInterrupt:
        cut = True
    if cut:
        say("cleaning up")
        time.sleep(60)
        raise KeyboardInterrupt
"""


def _read_until(proc, text: bytes, said: bytes) -> bytes:
    """``said`` and what the child writes to stderr next, until ``text`` is in it (bounded)."""
    fd, deadline = proc.stderr.fileno(), time.monotonic() + 60
    while text not in said:
        assert time.monotonic() < deadline and proc.poll() is None, said
        if select.select([fd], [], [], 0.5)[0]:
            said += os.read(fd, 65536)
    return said


@pytest.mark.parametrize("body", [DEFERRED, CAUGHT], ids=["deferred", "caught"])
def test_a_sigterm_after_a_ctrl_c_leaves_the_ctrl_cs_exit(tmp_path, local_state, body):
    go = tmp_path / "go"
    env = dict(os.environ, GO=str(go))
    proc = cli_server().popen([], env=env, stdout=PIPE, stderr=PIPE,
                              script=_PROGRAM % body)
    try:
        said = _read_until(proc, b"cleaning up" if body is DEFERRED else b"working", b"")
        proc.send_signal(signal.SIGINT)
        if body is CAUGHT:   # (the Ctrl-C raised and caught: its clean-up under way)
            said = _read_until(proc, b"cleaning up", said)
        proc.send_signal(signal.SIGTERM)
        go.touch()   # (sent, both: the deferred block ends; the signals were taken in it)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = (said + err).decode()
    lines = [line for line in text.splitlines() if line.strip()]
    assert (proc.returncode, lines[-1]) == (130, "Interrupted."), text
    assert "Traceback" not in text
    if body is DEFERRED:   # (held back: the clean-up ran whole)
        assert "cleaned up" in lines, text
