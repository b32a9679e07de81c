"""sigloss45: a push's first SIGTERM whose handler ran inside the ``close()`` that io's
finalizer calls on an HTTP answer dropped mid-upload (``http.client``'s ``putrequest``
forgets the last answer as the next chunk's request begins).

io's finalizer (``iobase_finalize``) silences whatever ``close()`` raises, a
KeyboardInterrupt too, without a word and without ``sys.unraisablehook``, so
:mod:`drivestage.lost_interrupts` never saw it: the SIGTERM was lost, every later one was a
repeat, only noted (:mod:`drivestage.stop_signals`), and the push sent its whole upload and
exited 0 through a stream of SIGTERMs (flakes45's sigpush42 failure, beside load). A prune
dropped its answers so too, and deleted on. The handler is run here at that close's first
line, as the signal would run it there. (A pull's main thread reads no answer of its own
there: its requests are its threads'.)"""
from __future__ import annotations

import os

from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)
from _sigpush42 import child, ended, live, md5, stale

MiB = 1 << 20

#: ``drivestage ARGS``, the SIGTERM handler run at the first call of an HTTP answer's
#: ``close()`` once ``ARMED`` was called ``TIMES`` times (a push: its upload's second chunk
#: under way; a prune: its command begun).
_AT_CLOSE = r"""
import runpy, signal, sys
calls = []
def tracer(frame, event, arg):
    code = frame.f_code
    if event == "call" and code.co_name == "ARMED":
        calls.append(True)
    elif event == "call" and len(calls) >= TIMES and code.co_name == "close" and \
            code.co_filename.endswith("http/client.py"):
        sys.settrace(None)
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, frame)
    return None
sys.settrace(tracer)
sys.argv = ["drivestage", *sys.argv[1:]]
runpy.run_module("drivestage", run_name="__main__", alter_sys=True)
"""


def test_a_sigterm_in_a_dropped_answers_close_stops_the_push(emulator, local_state,
                                                             drive_env, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    big = os.urandom(6 * MiB)
    (src / "big.bin").write_bytes(big)
    proc = child(emulator, "push", str(src), "drive:runs/a", "--chunk-size", "1MiB",
                 script=_armed("_send_chunk", 2))
    code, err = ended(proc)
    assert (code, err.splitlines()[-1:]) == (143, ["Interrupted by SIGTERM."]), err
    assert ("big.bin", md5(big)) not in live(emulator)   # (stopped mid-upload, not sent)
    assert stale(tmp_path / "state") == []


def test_a_sigterm_in_a_dropped_answers_close_stops_a_prune(emulator, drive_env):
    for epoch in range(1, 7):
        emulator.add_file(f"runs/b/epoch_{epoch:03d}.pt", b"w" * 100)
    proc = child(emulator, "prune", "drive:runs/b", "--keep-last", "1",
                 script=_armed("as_ctrl_c", 1))
    code, err = ended(proc)
    assert (code, err.splitlines()[-1:]) == (143, ["Interrupted by SIGTERM."]), err


#: lost_interrupts' thread that raises a dropped interrupt again, run only once the command's
#: stop-signal block has ended (as a loaded machine may run it: the prune's last requests
#: went first).
_LATE = r"""
import time
from drivestage import lost_interrupts, stop_signals
real = lost_interrupts._resend
def late(*args):
    end = time.monotonic() + 10
    while stop_signals._starts and time.monotonic() < end:
        time.sleep(0.001)
    real(*args)
lost_interrupts._resend = late
"""


def test_a_stop_raised_again_only_after_the_prune_ended_still_ends_it(emulator, drive_env):
    """A stop taken whose interrupt a finalizer dropped, and the thread that raises it again
    late: the block's end raises it (sigloss45: under load, the prune ended 0)."""
    for epoch in range(1, 7):
        emulator.add_file(f"runs/c/epoch_{epoch:03d}.pt", b"w" * 100)
    proc = child(emulator, "prune", "drive:runs/c", "--keep-last", "1",
                 script=_LATE + _armed("as_ctrl_c", 1))
    code, err = ended(proc)
    assert (code, err.splitlines()[-1:]) == (143, ["Interrupted by SIGTERM."]), err


def _armed(name: str, times: int) -> str:
    return _AT_CLOSE.replace("ARMED", name).replace("TIMES", str(times))
