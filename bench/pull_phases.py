"""Where the time of one ``drivestage`` command goes, phase by phase.

Runs the command in this process, as the console script would, with timing wrappers around
the functions that make up a pull (connecting, metadata, locks, stamps, disk-space checks,
fsyncs, the download and its md5 thread, each step of the extraction, the temporary folder,
the merge). For each phase it records calls, wall seconds, and CPU seconds of the whole
process (worker threads included) while the phase ran; nested phases are indented under the
phase that called them. A wrapper whose target no longer exists (the code moved) is skipped
and named in ``missing``, so the script keeps working while drivestage is reorganised.

    python bench/pull_phases.py [--json FILE] -- pull drive:id:ID DEST --extract -q
    python bench/pull_phases.py --extract-archive ZIP DEST    # the library call alone

``bench/pull.py`` runs it to split a pull into download, verify, extract and overhead. The
wrappers cost a few microseconds per call and wrap only functions called a handful of times
per pull (never per member or per chunk), so they do not move the numbers.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
import threading
import time

_BEGAN = time.monotonic()   # before drivestage is imported: imports are a phase too

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

#: (label, candidates): each candidate is ``module:attribute.path``; the first that exists is
#: wrapped (older and newer layouts of drivestage both work). Nesting comes from calls.
TARGETS = [
    ("open the store (discovery document, credentials)",
     ["drivestage.remote:open_store"]),
    ("find SRC (stamp + one stat, or a resolve)", ["drivestage.stage:_find"]),
    ("metadata: resolve SRC", ["drivestage.drive.store:DriveStore.resolve",
                               "drivestage.gdrive:DriveStore.resolve"]),
    ("metadata: stat the stamped id", ["drivestage.drive.store:DriveStore.stat",
                                       "drivestage.gdrive:DriveStore.stat"]),
    ("Drive-mount check of DEST", ["drivestage.stage:drive_mount"]),
    ("stamp: read", ["drivestage.stamps:of", "drivestage.stage_file:read_stamp",
                     "drivestage.stage:_Stage._read_stamp"]),
    ("stamp: write", ["drivestage.stamps:write", "drivestage.stage_file:FileStager._write_stamp",
                      "drivestage.stage:_Stage._write_stamp"]),
    ("look at the target (stat, partial)", ["drivestage.stage_file:FileStager._local"]),
    ("stamp: members intact? (lstat each)", ["drivestage.stamps:missing_member",
                                             "drivestage.stage_file:FileStager._members_intact",
                                             "drivestage.stage:_Stage._members_intact"]),
    ("stamp: members in place after the merge (lstat each)", ["drivestage.stamps:not_in_place"]),
    ("disk-space check (download)", ["drivestage.stage_file:check_space",
                                     "drivestage.stage:check_space"]),
    ("the zip's central directory first, and following begins",
     ["drivestage.unpack:Unpacking._follow"]),
    ("download() = fetch + write + hash", ["drivestage.download:Download.run",
                                          "drivestage.download:download"]),
    # (A resumed prefix is hashed by the hash thread, reported apart as "hash thread".)
    ("wait for the hash thread after the last write",
     ["drivestage.streams:Pass._wait_for_hash", "drivestage.download:_Run._wait_for_hash"]),
    ("checksum re-verification of a file on disk", ["drivestage.checksums:verify_file",
                                                    "drivestage.partials:verify_file"]),
    ("extract step of pull (incl. stamp rows)", ["drivestage.stage_extraction:Extraction.__call__",
                                                 "drivestage.stage_file:_Extraction.__call__",
                                                 "drivestage.stage:_Stage._extract"]),
    ("extract()", ["drivestage.extract:extract"]),
    ("the extraction that followed the download: its end and the merge",
     ["drivestage.extract.overlapped:Overlapped.finish"]),
    ("read the member list", ["drivestage.extract:list_members"]),
    ("validate members", ["drivestage.extract.validation:check_members",
                          "drivestage.extract:check_members"]),
    ("check members against DEST (links, folders)", ["drivestage.extract.job:check_against_dest",
                                                     "drivestage.extract:_check_against_dest"]),
    ("look for stale temporary folders", ["drivestage.extract.tempdir:remove_stale_temps",
                                          "drivestage.extract.job:remove_stale_temps"]),
    ("write members into the temporary folder", ["drivestage.extract.writing:write_files"]),
    # A big archive's members are written by worker processes (their CPU is not this
    # process's: the cpu column leaves it out; bench/pull.py's children's time has it).
    ("write members into the temporary folder",
     ["drivestage.extract.workers:write_in_processes"]),
    ("record what was written (lstat each)", ["drivestage.extract.records:record_members",
                                              "drivestage.extract:record_members"]),
    ("merge the temporary folder into DEST", ["drivestage.extract.merging:merge",
                                              "drivestage.extract:merge"]),
    ("remove the previous version's members", ["drivestage.extract.records:remove_members",
                                               "drivestage.extract:remove_members"]),
    ("fsync of a folder", ["drivestage.localfs:_fsync_folder"]),
    ("rmtree", ["shutil:rmtree"]),
    ("disk_usage (free-space checks)", ["shutil:disk_usage"]),
    ("fsync", ["os:fsync"]),
]
#: Context managers: the time to enter them (waiting for a lock) is the phase.
ENTER_TARGETS = [
    ("pull lock: acquire", ["drivestage.stage_file:state_lock"]),
    ("merge lock: acquire", ["drivestage.extract.merging:merge_lock",
                             "drivestage.extract:merge_lock"]),
]


class Recorder:
    """Phase timings, nested per thread by call order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: dict[tuple[str, ...], dict] = {}
        self.local = threading.local()
        self.missing: list[str] = []
        self.md5_thread_cpu = 0.0
        self.md5_thread_wall = 0.0

    def _stack(self) -> list[str]:
        stack = getattr(self.local, "stack", None)
        if stack is None:
            stack = self.local.stack = [] if threading.current_thread() is \
                threading.main_thread() else [f"thread {threading.current_thread().name}"]
        return stack

    def timed(self, label: str, fn, /, *args, **kwargs):  # "label" may be fn's too
        stack = self._stack()
        stack.append(label)
        key = tuple(stack)
        with self.lock:  # the row exists from the first call on: parents list before children
            self.rows.setdefault(key, {"calls": 0, "wall_s": 0.0, "cpu_s": 0.0,
                                       "order": len(self.rows)})
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            stack.pop()
            with self.lock:
                row = self.rows[key]
                row["calls"] += 1
                row["wall_s"] += wall
                row["cpu_s"] += cpu

    def report(self) -> list[dict]:
        out = []
        for key, row in sorted(self.rows.items(), key=lambda kv: kv[1]["order"]):
            out.append({"path": list(key), "calls": row["calls"],
                        "wall_s": round(row["wall_s"], 4), "cpu_s": round(row["cpu_s"], 4)})
        return out


def _resolve(candidates: list[str]):
    """``(owner, name, object)`` of the first candidate that exists, or None."""
    for spec in candidates:
        module, path = spec.split(":")
        try:
            owner = importlib.import_module(module)
            parts = path.split(".")
            for part in parts[:-1]:
                owner = getattr(owner, part)
            return owner, parts[-1], getattr(owner, parts[-1])
        except (ImportError, AttributeError):
            continue
    return None


def _replace(owner, name: str, old, new) -> None:
    """Put ``new`` where ``old`` was, and wherever a drivestage module imported ``old`` by
    name (``from x import f`` binds its own reference)."""
    setattr(owner, name, new)
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not mod_name.startswith("drivestage"):
            continue
        for attr, value in list(vars(mod).items()):
            if value is old:
                setattr(mod, attr, new)


def install(rec: Recorder) -> None:
    """Wrap every target that exists; note the others in ``rec.missing``."""
    for label, candidates in TARGETS:
        found = _resolve(candidates)
        if found is None:
            rec.missing.append(label)
            continue
        owner, name, fn = found

        def wrapper(*args, _fn=fn, _label=label, **kwargs):
            return rec.timed(_label, _fn, *args, **kwargs)

        _replace(owner, name, fn, functools.wraps(fn)(wrapper))
    for label, candidates in ENTER_TARGETS:
        found = _resolve(candidates)
        if found is None:
            rec.missing.append(label)
            continue
        owner, name, fn = found
        _replace(owner, name, fn, _timed_enter(rec, label, fn))
    _watch_md5_thread(rec)


def _timed_enter(rec: Recorder, label: str, factory):
    @functools.wraps(factory)
    def wrapper(*args, **kwargs):
        cm = factory(*args, **kwargs)

        class _Timed:
            def __enter__(self):
                return rec.timed(label, cm.__enter__)

            def __exit__(self, *exc):
                return cm.__exit__(*exc)

        return _Timed()
    return wrapper


def _watch_md5_thread(rec: Recorder) -> None:
    """The download's md5 runs in a thread of its own: record that thread's CPU and life."""
    found = _resolve(["drivestage.streams:Pass._hash", "drivestage.download:_Run._hash"])
    if found is None:
        rec.missing.append("md5 thread")
        return
    owner, name, run = found

    def wrapper(self, _run=run):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return _run(self)
        finally:
            with rec.lock:
                rec.md5_thread_cpu += time.thread_time() - cpu
                rec.md5_thread_wall += time.perf_counter() - wall

    setattr(owner, name, wrapper)


def run_cli(argv: list[str]) -> int:
    """``drivestage ARGV`` as the console script runs it; its exit code."""
    from drivestage.cli import main

    sys.argv = ["drivestage", *argv]
    try:
        main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="FILE", help="write the phases as JSON to FILE")
    ap.add_argument("--extract-archive", nargs=2, metavar=("ZIP", "DEST"),
                    help="time drivestage.extract.extract_archive(ZIP, DEST) instead")
    ap.add_argument("argv", nargs="*", help="the drivestage command line (after --)")
    args = ap.parse_args()
    # The imports the console script pays, and those a pull makes lazily (googleapiclient,
    # PyDrive2, the extractor): installing the wrappers imports them now.
    imports = time.perf_counter()
    import drivestage.cli  # noqa: F401
    rec = Recorder()
    install(rec)
    imports = time.perf_counter() - imports
    wall, cpu = time.perf_counter(), time.process_time()
    code = 0
    if args.extract_archive:
        from drivestage.extract import extract_archive

        rec.timed("extract_archive()", extract_archive, *args.extract_archive)
    else:
        code = rec.timed("main()", run_cli, args.argv)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = {"code": code, "since_start_s": round(time.monotonic() - _BEGAN, 4),
           "imports_s": round(imports, 4), "wall_s": round(wall, 4), "cpu_s": round(cpu, 4),
           "md5_thread_cpu_s": round(rec.md5_thread_cpu, 4),
           "md5_thread_wall_s": round(rec.md5_thread_wall, 4),
           "phases": rec.report(), "missing": rec.missing}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh)
    else:
        print_phases(out, sys.stdout)
    sys.exit(code)


def print_phases(out: dict, stream) -> None:
    """The phases as an indented table."""
    stream.write(f"{'phase':<64} {'calls':>5} {'wall s':>8} {'cpu s':>8}\n")
    stream.write(f"{'imports (drivestage.cli, googleapiclient, the extractor...)':<64} {1:>5} "
                 f"{out['imports_s']:>8.3f}\n")
    for row in out["phases"]:
        label = "  " * (len(row["path"]) - 1) + row["path"][-1]
        stream.write(f"{label[:64]:<64} {row['calls']:>5} {row['wall_s']:>8.3f} "
                     f"{row['cpu_s']:>8.3f}\n")
    if out["md5_thread_wall_s"]:
        stream.write(f"{'md5 thread (its own CPU; overlaps the download)':<64} {'':>5} "
                     f"{out['md5_thread_wall_s']:>8.3f} {out['md5_thread_cpu_s']:>8.3f}\n")
    if out["missing"]:
        stream.write(f"not found (moved?): {', '.join(out['missing'])}\n")


if __name__ == "__main__":
    main()
