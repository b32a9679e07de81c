"""speed38a: a ``trainer`` process spent 1.2 s of CPU after its last line (2.5-2.8 s of wall
time on a busy machine) in the interpreter's end, which searched torch's 300,000 objects
for cycles again and again as it took the modules apart. The entry point collects the
garbage once and freezes what lives (trainer/entry.py): what the end would have collected
is collected, finalizers included, and the command's exit code and lines are its own."""
from __future__ import annotations

import subprocess
import sys

import pytest

#: ``trainer ARGS`` through the console script's entry point, with a cycle of garbage whose
#: finalizer says when it ran, and with the automatic collections off (only an explicit
#: collection, or the interpreter's end, finds the cycle).
_RUN = """
import gc, sys
from trainer.entry import main

class Cycle:
    def __del__(self):
        print("finalized, frozen:", gc.get_freeze_count(), flush=True)

gc.disable()
cycle = Cycle()
cycle.me = cycle
del cycle
sys.argv = ["trainer", *sys.argv[1:]]
try:
    main()
finally:
    print("ended, frozen:", gc.get_freeze_count() > 0, flush=True)
"""


@pytest.mark.parametrize("args, code, out, err", [
    (["--version"], 0, "trainer, version ", ""),
    (["nosuch"], 2, "", "Error: No such command 'nosuch'.\n"),
])
def test_trainer_collects_its_garbage_then_freezes_what_lives_as_it_ends(args, code, out, err):
    proc = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True,
                          timeout=60)

    lines = proc.stdout.splitlines()
    # The cycle was finalized by the entry point's collection, before the freeze; then
    # everything alive was frozen (the end's collections no longer walk it).
    assert lines[-2:] == ["finalized, frozen: 0", "ended, frozen: True"], proc.stdout
    assert proc.returncode == code, proc.stderr
    assert lines[0].startswith(out)
    assert proc.stderr.endswith(err)
