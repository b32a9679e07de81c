"""sigloss45: a push's first SIGTERM whose handler ran inside the ``close()`` that io's
finalizer calls on an HTTP answer dropped mid-upload (``http.client``'s ``putrequest``
forgets the last answer as the next chunk's request begins).

io's finalizer (``iobase_finalize``) silences whatever ``close()`` raises, a
KeyboardInterrupt too, without a word and without ``sys.unraisablehook``, so
:mod:`drivestage.lost_interrupts` never saw it: the SIGTERM was lost, every later one was a
repeat, only noted (:mod:`drivestage.stop_signals`), and the push sent its whole upload and
exited 0 through a stream of SIGTERMs (flakes45's sigpush42 failure, beside load). The
handler is run here at that close's first line, as the signal would run it there."""
from __future__ import annotations

import os

import pytest

from _sigpush42 import child, ended, live, md5, stale

MiB = 1 << 20

#: ``drivestage push``, the SIGTERM handler run at the first call of an HTTP answer's
#: ``close()`` once the upload's second chunk is under way.
_AT_CLOSE = r"""
import runpy, signal, sys
chunks = []
def tracer(frame, event, arg):
    code = frame.f_code
    if event == "call" and code.co_name == "_send_chunk":
        chunks.append(True)
    elif event == "call" and len(chunks) >= 2 and code.co_name == "close" and \
            code.co_filename.endswith("http/client.py"):
        sys.settrace(None)
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, frame)
    return None
sys.settrace(tracer)
sys.argv = ["drivestage", *sys.argv[1:]]
runpy.run_module("drivestage", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter."""


def test_a_sigterm_in_a_dropped_answers_close_stops_the_push(emulator, local_state,
                                                             drive_env, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    big = os.urandom(6 * MiB)
    (src / "big.bin").write_bytes(big)
    proc = child(emulator, "push", str(src), "drive:runs/a", "--chunk-size", "1MiB",
                 script=_AT_CLOSE)
    code, err = ended(proc)
    assert (code, err.splitlines()[-1:]) == (143, ["Interrupted by SIGTERM."]), err
    assert ("big.bin", md5(big)) not in live(emulator)   # (stopped mid-upload, not sent)
    assert stale(tmp_path / "state") == []
