"""attack46: a Ctrl-C (not a SIGTERM) whose KeyboardInterrupt a finalizer dropped (an HTTP
answer's ``close()``, run by :class:`drivestage.lost_interrupts.ClosedWhenDropped`), and
lost_interrupts' thread that raises it again only once the command's block has ended (a
loaded machine: the prune's last requests went first). sigloss45 made the block's end raise
such a stop for SIGTERM and SIGHUP only: the Ctrl-C was lost and the prune ended 0."""
from __future__ import annotations

from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)
from _sigpush42 import child, ended
from test_sigloss45_finalized_close import _LATE

#: The Ctrl-C's handler (Python's own) run at the first call of an HTTP answer's ``close()``
#: once the command's stop-signal block began, as the signal would run it there; and
#: lost_interrupts' thread held until that block has ended.
_LATE_CTRL_C = _LATE + r"""
import runpy, signal, sys
calls = []
def tracer(frame, event, arg):
    code = frame.f_code
    if event == "call" and code.co_name == "as_ctrl_c":
        calls.append(True)
    elif event == "call" and calls and code.co_name == "close" and \
            code.co_filename.endswith("http/client.py"):
        sys.settrace(None)
        signal.getsignal(signal.SIGINT)(signal.SIGINT, frame)
    return None
sys.settrace(tracer)
sys.argv = ["drivestage", *sys.argv[1:]]
runpy.run_module("drivestage", run_name="__main__", alter_sys=True)
"""


def test_a_ctrl_c_raised_again_only_after_the_prune_ended_still_ends_it(emulator, drive_env):
    for epoch in range(1, 7):
        emulator.add_file(f"runs/c/epoch_{epoch:03d}.pt", b"w" * 100)
    proc = child(emulator, "prune", "drive:runs/c", "--keep-last", "1", script=_LATE_CTRL_C)
    code, err = ended(proc)
    assert (code, err.splitlines()[-1:]) == (130, ["Interrupted."]), err
