"""The ``drivestage`` command runs Python's cyclic garbage collector less often (perf36): an
extraction keeps a few objects per member alive, and with the default thresholds a
20,000-member ``pull --extract`` ran 400 young collections and 3-4 full ones over every
object of the process, 0.16-0.19 s of the main thread's CPU (0.04-0.05 s now). The setting
is the command's (its process is its own), never the library's: a training process that
calls drivestage keeps its own."""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys


_CHILD = r"""
import atexit, gc, json, sys
atexit.register(lambda: print(json.dumps(gc.get_threshold())))
sys.argv = ["drivestage", "--version"]
from drivestage.cli import main
main()
"""


def test_the_drivestage_command_collects_young_objects_every_50000_allocations() -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                         env=dict(os.environ), timeout=120)
    young, older, oldest = json.loads(out.stdout.strip().splitlines()[-1])
    assert (young, older, oldest) == (50_000, 10, 10), out   # (700, 10, 10) before


_FROZEN = r"""
import atexit, gc, sys
atexit.register(lambda: print(gc.get_freeze_count()))
sys.argv = ["drivestage", *sys.argv[1:]]
from drivestage.cli import main
main()
"""


def test_the_interpreters_last_collection_skips_what_the_command_left(tmp_path) -> None:
    """As the process ends, Python collects once more over every object alive: 0.1 s of
    CPU after a 20,000-member pull --extract (overlap39). The command hands them all to the
    permanent generation as it ends, however it ends, so that collection passes them by."""
    for args, code in ((["--version"], 0), (["pull"], 2),   # done; a usage error
                       (["pull", "drive:x", str(tmp_path / "d")], 1)):   # no credentials
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DRIVESTAGE_", "GOOGLE_"))}
        env["HOME"] = str(tmp_path)   # no saved login: it fails before any request
        out = subprocess.run([sys.executable, "-c", _FROZEN, *args], capture_output=True,
                             text=True, env=env, timeout=120)
        assert out.returncode == code, out
        assert int(out.stdout.strip().splitlines()[-1]) > 10_000, out   # 0 before


def test_importing_and_using_the_library_leaves_the_collector_as_it_was() -> None:
    from drivestage.heap import collect_less_often
    before, frozen = gc.get_threshold(), gc.get_freeze_count()   # (the suite froze its own)
    import drivestage.extract  # noqa: F401
    import drivestage.stage  # noqa: F401
    assert gc.get_threshold() == before
    # Nothing frozen (a notebook's objects are its own): the count grows with a freeze only
    # (frozen objects freed since make it smaller).
    assert gc.get_freeze_count() <= frozen
    try:
        collect_less_often(1234)
        assert gc.get_threshold() == (1234, before[1], before[2])
    finally:
        gc.set_threshold(*before)
