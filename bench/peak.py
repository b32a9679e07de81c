"""Run the ``drivestage`` command in a child process and measure that process's own peak RSS.

A child's rusage is no good for this: on Linux its ``ru_maxrss`` starts from the parent's
peak (the high-water mark is carried over at exec), so a parent holding the emulator or test
data inflates it. The child instead reads its own ``VmHWM`` from ``/proc/self/status`` at
exit, and adds the peaks of its extraction worker processes (``drivestage.extract.workers``;
an upper bound: their peaks need not coincide). Used by ``bench/pull.py`` and ``tests/test_pull_memory.py``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

_RUN = """
import atexit, sys
out = sys.argv.pop(1)
def hwm():
    with open('/proc/self/status') as fh:
        kb = int(next(line.split()[1] for line in fh if line.startswith('VmHWM:')))
    workers = sys.modules.get('drivestage.extract.workers')
    kb += sum(getattr(workers, 'PEAKS', ())) // 1024  # its extraction workers' peaks too
    with open(out, 'w') as fh:
        fh.write(str(kb))
atexit.register(hwm)
sys.argv[0] = 'drivestage'
from drivestage.cli import main
main()
"""


def run_drivestage(args: list[str], env: dict | None = None, cwd: str | None = None,
                   cli=None) -> tuple[subprocess.CompletedProcess, int]:
    """``drivestage ARGS`` through its console-script entry point: (process, peak RSS bytes).
    ``cli``: a fork server of tests/_forkcli.py to fork it from (its imports made there
    once; the peak then includes what the server's imports took)."""
    fd, peak_file = tempfile.mkstemp(prefix="drivestage-peak-")
    os.close(fd)
    try:
        if cli is not None:
            proc = cli.run([peak_file, *args], env=env, cwd=cwd, text=True, script=_RUN)
        else:
            proc = subprocess.run([sys.executable, "-c", _RUN, peak_file, *args], env=env,
                                  cwd=cwd, capture_output=True, text=True)
        with open(peak_file) as fh:
            peak = int(fh.read() or 0) * 1024
    finally:
        os.unlink(peak_file)
    return proc, peak
