"""A Ctrl-C that comes after the command ended, as the process exits (its atexit callbacks:
multiprocessing's, which ends the pool workers it started; logging's; a training run's
release of its loader workers). Python stops the callback it lands in, says so
(``Exception ignored in atexit callback``) and runs the others. Since
:mod:`drivestage.lost_interrupts` re-sent every KeyboardInterrupt that Python reports that way
(the one raised in a finalizer, dropped, as the command loads), that one was re-sent too: it
cut the next callback, which was reported and re-sent again, and so every exit callback after
it was cut, without a word. It re-sends now only while the command runs."""
from __future__ import annotations

import subprocess
import sys

import pytest

#: ``drivestage ARGS`` (``trainer`` with ``main``), in a process whose exit work is two
#: callbacks: the first run meets a Ctrl-C (sent to itself: the handler runs at once, in the
#: loop), the other, run after it, takes a second and says it ran.
SCRIPT = """\
import atexit, os, signal, sys, time
def later():   # (a while: joining a pool's workers)
    time.sleep(1)
    sys.stderr.write("later exit work done\\n")
atexit.register(later)
def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(10 ** 7):   # (the KeyboardInterrupt lands in here)
        pass
    sys.stderr.write("not interrupted\\n")
atexit.register(ctrl_c)
from {main} import main
main()
"""


@pytest.mark.parametrize("main", ["drivestage.entry", "trainer.entry"])
def test_a_ctrl_c_in_an_exit_callback_cuts_that_one_alone(main):
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(main=main), "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.endswith("version 0.1.0\n")
    assert "not interrupted" not in done.stderr
    assert done.stderr.endswith("KeyboardInterrupt: \nlater exit work done\n"), done.stderr
