"""Reading the umask must not change it: ``os.umask(0)`` then ``os.umask(mask)`` (six copies
in the trainer: checkpoints, results.csv and plots, the image cache, prepare-voc's lists,
predict's outputs, the ONNX graph) left, for that moment, every file another thread created
writable by anyone. One place now reads it (``drivestage.localfs.umask``)."""
from __future__ import annotations

import os
import subprocess
import sys

from drivestage.localfs import umask


#: Reads the umask of process ``argv[1]`` from /proc as fast as it can until its stdin closes;
#: prints the masks it saw.
WATCHER = r"""
import os, sys, threading
path, seen, done = f"/proc/{sys.argv[1]}/status", set(), threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
print("ready", flush=True)
while not done.is_set():
    with open(path, "rb") as fh:
        seen.update(line.split()[1].decode() for line in fh if line.startswith(b"Umask:"))
print(" ".join(sorted(seen)), flush=True)
"""


def test_reading_the_umask_never_changes_it_for_another_thread():
    """Another process watching this one's umask (as the kernel reads it for a file another
    thread creates) never sees it other than it is while it is read 100,000 times."""
    old = os.umask(0o022)
    try:
        assert umask() == 0o022
        watcher = subprocess.Popen([sys.executable, "-c", WATCHER, str(os.getpid())],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert watcher.stdout.readline() == "ready\n"
            for _ in range(100_000):
                umask()
        finally:
            out, _ = watcher.communicate("", timeout=60)
        assert out.split() == ["0022"], out
    finally:
        os.umask(old)


def test_the_trainer_reads_the_umask_in_one_place():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    callers = [os.path.join(d, n) for pkg in ("trainer", "drivestage")
               for d, _, names in os.walk(os.path.join(root, pkg)) for n in names
               if n.endswith(".py") and "os.umask(" in open(os.path.join(d, n)).read()]
    assert [os.path.relpath(p, root) for p in callers] == [os.path.join("drivestage", "localfs.py")]
