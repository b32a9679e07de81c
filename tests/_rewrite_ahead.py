"""The test modules' assertion-rewritten bytecode, written once before the xdist workers start
(tests/conftest.py's ``pytest_configure``, in the controller).

pytest rewrites each test module's ``assert`` statements as it imports it and caches the
result beside it (``__pycache__/NAME.cpython-311-pytest-X.pyc``), but each worker collects
every test module, and on a fresh clone (CI) the workers start together and go through the
files in the same order: each finds no cached file and rewrites it itself. The whole suite's
rewriting costs about 15 CPU-s; three workers paid it three times (a cold start of
``-n 3`` that ran no test: 59 user-s against 20 with the cache written). Here the files with
no up-to-date cache are rewritten once, spread over the cores, with pytest's own functions
(the same code, the same file, so a worker reads it as if it had written it); a file that
fails here is left for the worker, which then reports it as it always did.
"""
from __future__ import annotations

import fnmatch
import importlib.util
import os
from pathlib import Path
from typing import Any

from _pytest.assertion import rewrite


def _candidates(config: Any, args: "list[str] | None" = None) -> list[Path]:
    """The test modules (and conftest files) the run's arguments (or ``args``) name, as
    pytest would collect them by ``python_files``: files named, folders searched through."""
    patterns = list(config.getini("python_files")) + ["conftest.py"]
    base = Path(config.invocation_params.dir)
    out: list[Path] = []
    for arg in config.args if args is None else args:
        path = base / str(arg).split("::")[0]
        if path.is_file() and path.suffix == ".py":
            out.append(path)
        elif path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
                out += [Path(folder, f) for f in sorted(files)
                        if any(fnmatch.fnmatch(f, p) for p in patterns)]
    return out


def _pyc(fn: Path) -> Path:
    return rewrite.get_cache_dir(fn) / (fn.name[:-3] + rewrite.PYC_TAIL)


def _stale(fn: Path) -> bool:
    """Whether ``fn`` has no cached rewrite that pytest would take (its header checked as
    ``rewrite._read_pyc`` checks it: magic, flags, the source's hash)."""
    try:
        with open(_pyc(fn), "rb") as fh:
            head = fh.read(16)
        source = fn.read_bytes()
    except OSError:
        return True
    return head != (importlib.util.MAGIC_NUMBER + b"\x03\x00\x00\x00"
                    + importlib.util.source_hash(source)[:8])


def _rewrite(config: Any, files: list[Path]) -> None:
    state = config.stash[rewrite.assertstate_key]
    for fn in files:
        try:
            source_hash, co = rewrite._rewrite_test(fn, config)
        except Exception:   # (a syntax error: the worker's import reports it)
            continue
        if rewrite.try_makedirs(_pyc(fn).parent):
            rewrite._write_pyc(state, co, source_hash, _pyc(fn))


def rewrite_ahead(config: Any, processes: int, args: "list[str] | None" = None) -> int:
    """Write the cached rewrite of each test module of this run (or of ``args``, paths) that
    has none up to date, in ``processes`` forked processes at most. Returns how many files
    it rewrote (0 where pytest does not rewrite asserts or writes no bytecode here)."""
    import sys

    if (sys.dont_write_bytecode or config.getoption("assertmode") != "rewrite"
            or not hasattr(os, "fork")):
        return 0
    todo = [fn for fn in _candidates(config, args) if _stale(fn)]
    shares = [todo[i::max(1, processes)] for i in range(max(1, processes))]
    children = []
    for share in shares[1:]:
        if not share:
            continue
        pid = os.fork()
        if pid == 0:   # (the child does its share and ends without pytest's exit work)
            try:
                _rewrite(config, share)
            finally:
                os._exit(0)
        children.append(pid)
    _rewrite(config, shares[0])
    for pid in children:
        os.waitpid(pid, 0)
    return len(todo)
