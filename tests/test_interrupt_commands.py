"""A pull and a push interrupted (Ctrl-C) at the start of each drivestage function they
call, in turn, in a process that lives on (a notebook): the next one does its work at once,
and nothing is lost or left behind."""
from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import sys
import threading
import time

import pytest

import drivestage
import drivestage.interrupts
from drivestage.extract.overlapped import Overlapped
from drivestage.retention import RetentionPolicy
from drivestage.stage import pull
from drivestage.upload_tree import push
from _archives import a_tgz, a_zip, tree
from _leaks import open_targets
from _ramdisk import tmp_path  # noqa: F401  (a fixture: the sweeps write thousands of files)
from _sweep import ALL, every
from test_interrupt_locks import _InterruptAt


def _drivestage_threads(besides: set) -> list[str]:
    return [t.name for t in threading.enumerate()
            if t.name.startswith("drivestage-") and t not in besides]


def _none_left(seconds: float, besides: set) -> list[str]:
    """drivestage's threads still running ``seconds`` on, but those in ``besides``: each
    joined as it ends (a poll every 10 ms waited 5 ms a point on average), then any one
    they started meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate()
                if t.name.startswith("drivestage-") and t not in besides]
        if not left:
            break
        for thread in left:
            thread.join(max(0.0, deadline - time.monotonic()))
    return _drivestage_threads(besides)


def _open_under(folder) -> list[str]:
    """What this process holds open below ``folder`` (a descriptor left open after a
    Ctrl-C holds a lock, or the disk space of a file removed since, until the kernel
    restarts). A file object the collector frees (one an interrupted upload held, in a
    cycle with the failure's traceback) is not held for good: collected first."""
    if not os.path.isdir("/proc/self/fd"):
        return []

    def held() -> list[str]:
        return [path for path in open_targets() if path.startswith(f"{folder}{os.sep}")]

    if not held():
        return []
    gc.collect()  # only then: a collection per call swept doubled the sweeps' time
    return held()


def _interrupted_then_rerun(k: int, root: str, before: set, call,
                            sites: "dict | None" = None) -> "str | None":
    """``call()`` with a Ctrl-C at its ``k``-th drivestage call (with ``sites``, a sweep's:
    at the first from the ``k``-th on at a site no earlier point landed on, see
    ``_InterruptAt``), then its threads' end and ``call()`` again, timed: where the Ctrl-C
    landed, or None when ``call()`` ended first.
    The rerun does not wait for the emulator to serve what the Ctrl-C left unanswered: a
    create whose answer it cut may be made on Drive after the rerun listed DEST, and the
    rerun still makes no second copy (it creates with the id the first push recorded, and
    Drive refuses a second file with one id)."""
    tracer = _InterruptAt(k, only_under=root, sites=sites)
    unseen: list = []
    hook = sys.unraisablehook

    def unraisable(info) -> None:
        # The tracer's KeyboardInterrupt in a finalizer (a generator the collector closed, in
        # this thread): Python prints it and goes on, pytest made it a warning (which
        # collection it fell in is the machine's timing: one run in many). Anything else
        # is still reported.
        if info.exc_type is KeyboardInterrupt and tracer.calls >= tracer.k and not unseen:
            unseen.append(repr(info.object))
        else:
            hook(info)

    sys.unraisablehook = unraisable
    sys.settrace(tracer)
    try:
        call()
    except BaseException:
        if tracer.calls < tracer.k:
            raise
    else:
        if tracer.calls < tracer.k:
            return None
        # Raised where nothing could see it (a generator closed by the collector: the
        # tracer sees its close as a call, ``unseen``; a real Ctrl-C, which lands between
        # bytecodes, did not land there once in 10,000 tries each on DriveRetrying's loop
        # and RetentionPolicy.active, Python 3.11 and 3.13): the work went on to its end.
        # The sweep goes on too (it stopped at the first such call, short of most pushes).
    finally:
        sys.settrace(None)
        sys.unraisablehook = hook
    where = f"a Ctrl-C at call {tracer.k}: {tracer.where}"
    assert _none_left(10, before) == [], f"threads left running after {where}"
    began = time.monotonic()
    call()
    assert time.monotonic() - began < 10, f"the rerun after {where} waited"
    return where


def _sweep_pulls(ks, root: str, tmp_path, pull_into, expected: dict, inside: str = "",
                 sites: "dict | None" = None) -> int:
    """``pull_into(dest)`` interrupted at its ``k``-th call under ``root``, for each ``k`` of
    ``ks`` until one ends first, then rerun (each into a DEST of its own): DEST (its folder
    ``inside``) holds exactly ``expected``, no temporary folder, and nothing under DEST is
    left open. With ``sites`` (a dict, shared by the sweeps of one test), each point lands
    at the first call from its ``k``-th on at a site no point landed on before, in this
    sweep or an earlier one (``_InterruptAt``), and the next ``k`` taken is past it. How
    many landed."""
    landed = 0
    before = set(threading.enumerate())  # another test's, in this worker process
    last = 0   # where the last point landed
    for k in ks:
        if sites is not None and k <= last:
            continue   # (the last point landed past this k)
        dest = tmp_path / f"d{k}"
        where = _interrupted_then_rerun(k, root, before, lambda: pull_into(dest), sites)
        if where is None:
            break
        landed += 1
        if sites is not None:
            last = next(reversed(sites.values()))
        assert tree(dest / inside) == expected, f"after {where}"
        # What a Ctrl-C at the wrong moment left (a temporary folder) the rerun removed.
        assert [p.name for p in dest.rglob(".drivestage-*")] == [], f"after {where}"
        assert _open_under(dest) == [], f"after {where}"
        shutil.rmtree(dest)
    return landed


#: The modules of a pull -x whose every call (each site once) a sweep interrupts: a Ctrl-C
#: at the start of the extraction's finish() left the extraction running, its temporary
#: folder and descriptors with it; one in a download's close() left the partial open (the
#: next close returned at once); one while a download, its extraction or the state folder
#: was being opened left that open.
_EACH_CALL_INTO = ("unpack.py", "download.py", "partials.py", "streams.py",
                   "stream_threads.py", "extract/overlapped.py", "extract/job.py", "extract/statedir.py")


@pytest.mark.slow
def test_a_ctrl_c_at_any_call_of_a_pull_extract_of_a_zip_or_a_tar_gz_then_a_rerun(
        emulator, drive_env, tmp_path, monkeypatch):
    """``pull --extract`` of a zip (extracted as it downloads), then of a tar.gz (extracted
    in one stream as it downloads), interrupted at the start of drivestage functions it
    calls, in turn: every thread it started ends, and the next pull, in the same process (a
    notebook), stages exactly the archive at once and leaves nothing else in DEST.
    Which calls (tests/_sweep.py; DRIVESTAGE_TEST_SWEEP=all: every call of each sweep): a
    site is the function called and the drivestage stack that called it (``_InterruptAt``),
    and the sweeps share one record of the sites their points landed on, so each point
    lands on a site none did before. The zip's sweep takes every 3rd call (about 960 sites
    in 1,350 calls), the tar.gz's every 2nd (650 of its 700 sites are a zip's too: those
    already landed on are passed over), then a sweep of every call into each module of
    ``_EACH_CALL_INTO`` lands on each site there still left: 355 + 305 + 50 points on 710
    sites, where three tests (every 2nd call of the zip, every 3rd of the tar.gz, each
    module's on its own) took 935 points and landed on 660 sites of the two pulls. (The
    leaks of a close() and of the state folder's opening, put back on purpose, were each
    found by the zip's sweep.)"""
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "20")
    # Four members: twelve made 12 % more calls (the same ones again) and cost each point
    # a third more in files written and removed.
    members = {f"set/{i:02d}.bin": os.urandom(3000 + i) for i in range(4)}
    blobs = {"set.zip": a_zip(members), "set.tar.gz": a_tgz(members)}
    for name, blob in blobs.items():
        emulator.add_file(f"d/{name}", blob)
    store = drivestage.connect()
    package = os.path.dirname(drivestage.__file__)
    sites: "dict | None" = None if ALL else {}
    sweeps = [("set.zip", range(1, 5000, every(3)), package),
              ("set.tar.gz", range(2, 5000, every(2)), package),
              *(("set.tar.gz", range(1, 500), os.path.join(package, module))
                for module in _EACH_CALL_INTO)]
    for i, (name, ks, root) in enumerate(sweeps):
        # (One lambda and one line for every sweep: a site's stack is the same in each.)
        landed = _sweep_pulls(ks, root, tmp_path / f"s{i}",
                              lambda dest: pull(f"drive:d/{name}", str(dest), extract=True,
                                                quiet=True, store=store),
                              {name: blobs[name], **members}, sites=sites)
        if root == package:
            assert landed > 200 // ks.step, name
    if sites is not None:   # each module's calls were swept over (in one sweep or another)
        for module in _EACH_CALL_INTO:
            path = os.path.join(package, module)
            assert sum(site[0].co_filename == path for site in sites) >= 2, module


@pytest.mark.slow
def test_a_ctrl_c_at_any_call_of_a_folder_pull_then_a_rerun(emulator, drive_env, tmp_path,
                                                            monkeypatch):
    """``pull --extract`` of a Drive folder (small files fetched by a pool of threads, a
    zip among them extracted, a file large enough for parallel ranged streams), interrupted
    at every 10th drivestage call (all of them: 45 s, in 590 calls): the rerun stages the
    whole tree at once, with nothing else left in it."""
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "20")
    members = {f"z/{i}.bin": os.urandom(500 + i) for i in range(3)}
    files = {"a.txt": os.urandom(1000), "b.txt": os.urandom(1001),
             "sub/c.txt": os.urandom(900), "set.zip": a_zip(members),
             "big.bin": os.urandom(200_000)}
    for rel, data in files.items():
        emulator.add_file(f"d/F/{rel}", data)
    store = drivestage.connect()
    step = every(10)
    # Every 10th call, not the first at a new site: a folder's small files and its large one
    # (ranged streams) pass the same sites, and a site met first with a small file passed
    # over the large one's (a descriptor left open by a stream's close cut short, put back
    # on purpose, was found here at big.bin alone).
    landed = _sweep_pulls(range(3, 5000, step), os.path.dirname(drivestage.__file__), tmp_path,
                          lambda dest: pull("drive:d/F", str(dest), extract=True, quiet=True,
                                            store=store, chunk_size=64 << 10, jobs=2),
                          {**files, **members}, inside="F")
    assert landed > 500 // step


@pytest.mark.slow
def test_a_ctrl_c_at_any_call_of_a_push_then_a_rerun(emulator, drive_env, tmp_path,
                                                     monkeypatch):
    """``push`` of a run folder interrupted at the start of every 8th drivestage function
    it calls, in turn: the threads it started end, and the next push, in the same process,
    finishes at once with Drive holding exactly the folder's files, once each (a lock left
    held made every later push into the place wait for good)."""
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "20")
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    src = tmp_path / "run"
    src.mkdir()
    files = {f"f{i}.txt": os.urandom(2000 + i) for i in range(3)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    store = drivestage.connect()
    root = os.path.dirname(drivestage.__file__)
    landed = 0
    before = set(threading.enumerate())
    step = every(8)  # each call costs two pushes (105 s for all of them)
    for k in range(1, 5000, step):
        place = f"runs/r{k}"
        _own_state(monkeypatch, tmp_path, k)
        where = _interrupted_then_rerun(k, root, before, lambda: push(
            str(src), place, store=store, jobs=2))
        if where is None:
            break
        landed += 1
        on_drive = sorted((e.name, e.md5) for e in store.list(store.resolve(place)))
        assert on_drive == sorted((n, hashlib.md5(d).hexdigest()) for n, d in files.items()), \
            f"after {where}"
    assert landed > 100 // step


def test_a_ctrl_c_while_the_end_of_a_download_waits_for_its_extraction(tmp_path):
    """A tar.gz followed as it downloaded, its download done, and the extraction still
    writing members (slow here: it stalls on its first member until told to stop) when a
    Ctrl-C lands as ``pull -x`` waits for it: the extraction is stopped and waited for
    before its temporary folder goes. (The temporary folder and its descriptors went while
    it still wrote through them: found by a sweep of ``pull -x`` of a tar.gz, which left a
    ``.drivestage-extract-*`` with half the members in DEST, its lock held for good.)"""
    blob = a_tgz({f"set/{i}.bin": os.urandom(5000) for i in range(4)})
    archive = tmp_path / "set.tar.gz"
    archive.write_bytes(blob)
    dest = tmp_path / "data"
    dest.mkdir()
    writing = threading.Event()
    job: list = []
    stalls: list[bool] = []

    made = threading.Event()

    def slow(n: int) -> None:  # the extraction's progress: it stalls until stopped
        # (It may be called before Overlapped.tar returns: job[0] raised IndexError there,
        # the extraction ended with it, and the test passed without a stall to stop.)
        made.wait(10)
        writing.set()
        # (Recorded: a stall that ran out would let the extraction go on and end by itself,
        # and the test pass 10 s a member later though nothing stopped it.)
        stalls.append(job[0].stop.wait(10))

    job.append(Overlapped.tar(str(archive), len(blob), str(dest), lambda a, b: True,
                              progress=slow))
    made.set()
    assert writing.wait(10)
    # At the first call into drivestage.interrupts: the wait for the extraction.
    tracer = _InterruptAt(1, only_under=drivestage.interrupts.__file__)
    sys.settrace(tracer)
    try:
        with pytest.raises(KeyboardInterrupt):
            job[0].finish()
    finally:
        sys.settrace(None)
    assert "join" in tracer.where
    assert not job[0].thread.is_alive(), "the extraction still ran as its folder went"
    assert stalls and all(stalls), f"the extraction was waited for, not stopped: {stalls}"
    assert os.listdir(dest) == []


def _a_run_to_push(tmp_path, emulator):
    """A run folder (three checkpoints with their sidecars) and what pushing it with
    ``--delete`` and ``keep_last=1`` into a place must leave there; ``seed(place)`` puts on
    Drive what an earlier push left: the first checkpoint (retention prunes it) and a file
    removed locally since (``--delete`` deletes it)."""
    src = tmp_path / "run"
    src.mkdir()
    files = {}
    for epoch in range(1, 4):
        files[f"epoch_{epoch:03d}.pt"] = os.urandom(1500 + epoch)
        files[f"epoch_{epoch:03d}.pt.json"] = json.dumps(
            {"epoch": epoch, "metrics": {"map50": 0.1 * epoch}}).encode()
    for name, data in files.items():
        (src / name).write_bytes(data)

    def seed(place: str) -> None:
        for name in ("epoch_001.pt", "epoch_001.pt.json"):
            emulator.add_file(f"{place}/{name}", files[name])
        emulator.add_file(f"{place}/removed.txt", b"gone from the run folder")

    kept = sorted((n, hashlib.md5(d).hexdigest()) for n, d in files.items()
                  if n.startswith("epoch_003"))
    return src, seed, kept


def _own_state(monkeypatch, tmp_path, k: int) -> None:
    """A state folder for the push interrupted at ``k`` and its rerun: in one shared by the
    whole sweep, every push went through the create-id records of all the pushes before it
    (an hour's worth), so each point of the sweep cost more than the one before (and pushed
    the moments it sweeps over further into that loop): 140 s instead of 8."""
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / f"state-{k}"))


def _sweep_pushes(ks, root: str, tmp_path, emulator, monkeypatch,
                  new_sites: bool = False) -> int:
    """``push --delete`` of :func:`_a_run_to_push`'s folder with ``keep_last=1``, interrupted
    at its ``k``-th call under ``root`` for each ``k`` of ``ks`` until one ends first, then
    rerun: Drive holds exactly what the policy keeps, once each, and nothing in the run
    folder stays open (``new_sites``: as for :func:`_sweep_pulls`). How many landed."""
    src, seed, kept = _a_run_to_push(tmp_path, emulator)
    store = drivestage.connect()
    landed = 0
    before = set(threading.enumerate())
    sites: "dict | None" = {} if new_sites and not ALL else None
    for k in ks:
        if sites and k <= next(reversed(sites.values())):
            continue   # (the last point landed past this k)
        place = f"runs/r{k}"
        seed(place)
        _own_state(monkeypatch, tmp_path, k)
        where = _interrupted_then_rerun(k, root, before, lambda: push(
            str(src), place, RetentionPolicy(keep_last=1), store=store, delete=True, jobs=2),
            sites)
        if where is None:
            break
        landed += 1
        on_drive = sorted((e.name, e.md5) for e in store.list(store.resolve(place)))
        assert on_drive == kept, f"after {where}"
        assert _open_under(src) == [], f"after {where}"
    return landed


@pytest.mark.slow
def test_a_ctrl_c_at_any_call_of_a_push_delete_with_retention_then_a_rerun(
        emulator, drive_env, tmp_path, monkeypatch):
    """``push --delete`` with a retention policy (files removed locally deleted on Drive,
    checkpoints past the policy pruned) interrupted at every 89th drivestage call (all of
    them with DRIVESTAGE_TEST_SWEEP=all: 13 min, in 3,800 calls): the next push, in the same
    process, finishes at once with Drive holding exactly what the policy keeps."""
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "20")
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    step = every(89)
    landed = _sweep_pushes(range(7, 5000, step), os.path.dirname(drivestage.__file__),
                           tmp_path, emulator, monkeypatch)
    assert landed > 1000 // step


@pytest.mark.slow
@pytest.mark.parametrize("module", ["extra.py", "pruning.py"])
def test_a_ctrl_c_at_each_call_into_the_deletions_of_a_push_then_a_rerun(
        emulator, drive_env, tmp_path, monkeypatch, module):
    """The same at every call into the module that decides and makes the deletions, each
    site once."""
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "20")
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    root = os.path.join(os.path.dirname(drivestage.__file__), module)
    assert _sweep_pushes(range(1, 500), root, tmp_path, emulator, monkeypatch,
                         new_sites=True) >= 5
