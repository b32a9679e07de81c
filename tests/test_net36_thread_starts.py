"""A Ctrl-C that lands while drivestage starts one of its threads, in a process that lives
on (a notebook): ``interrupts.start_thread`` holds it back until the thread runs and raises
it then, and a plain ``Thread.start()`` raises it as it returns, so the caller sees a
KeyboardInterrupt from a start whose thread already runs. flakes35 found
``interrupts.beside`` leaving its connect's socket open that way; here every thread start
the main thread makes in a pull (a download's streams and hash, ``-x`` extractions, a local
archive's hashed read, a folder's pool), a push and a mirror is interrupted in turn: its
threads all end, nothing under DEST stays open, no temporary file is left, and the same
call made again does its work, exactly.

The Ctrl-C is a SIGINT the main thread sends itself from inside ``Thread.start`` once the
real start has returned (a hook on ``threading.Thread.start``): no timing.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import threading

import pytest

import drivestage
from drivestage.stage import pull
from drivestage.upload_tree import push
from _archives import a_tgz, a_zip, tree
from _download_fixtures import small_splits  # noqa: F401 (fixture)
from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from test_interrupt_commands import _none_left, _open_under
from trainer.stuck import current_frames   # (sys._current_frames() can deadlock: see there)

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX threads")


class _CtrlCAtStart:
    """Sends SIGINT to the main thread at its ``n``-th start of a thread named ``prefix…``
    (from inside ``start()``, once the thread runs)."""

    def __init__(self, monkeypatch, n: int, prefix: str = "drivestage-"):
        self.n, self.starts, self.where = n, 0, ""
        real = threading.Thread.start
        main = threading.main_thread()

        def start(thread: threading.Thread) -> None:
            real(thread)
            if threading.current_thread() is main and thread.name.startswith(prefix):
                self.starts += 1
                if self.starts == self.n:
                    self.where = f"start {n}, of {thread.name}"
                    signal.pthread_kill(main.ident, signal.SIGINT)
        monkeypatch.setattr(threading.Thread, "start", start)


def _sweep(monkeypatch, call, check, most: int = 40) -> list[str]:
    """``call(k)`` with a Ctrl-C at its ``k``-th thread start, for k = 1, 2, … until one
    ends first; after each, drivestage's threads end, ``call(k)`` again succeeds and
    ``check(k, where)`` holds. Where the Ctrl-Cs landed."""
    before = set(threading.enumerate())
    landed = []
    for k in range(1, most):
        with monkeypatch.context() as m:
            hook = _CtrlCAtStart(m, k)
            try:
                call(k)
            except KeyboardInterrupt:
                pass
            else:
                assert hook.starts < k, f"no KeyboardInterrupt after {hook.where}"
                return landed
        where = hook.where
        landed.append(where)
        assert _none_left(10, before) == [], f"threads left running after a Ctrl-C at {where}"
        call(k)
        check(k, where)
    raise AssertionError(f"more than {most} thread starts")



@pytest.fixture
def fast(monkeypatch, emulator, drive_env):
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "20")


def _pulls(tmp_path, emulator, src: str, expected: dict, inside: str = "", fresh=False,
           **options):
    """(``fresh``: a store of its own each pull, its connections new.)"""
    store = drivestage.connect() if src.startswith("drive:") and not fresh else None

    def call(k: int) -> None:
        pull(src, str(tmp_path / f"d{k}"), quiet=True, store=store, **options)

    def check(k: int, where: str) -> None:
        dest = tmp_path / f"d{k}"
        assert tree(dest / inside) == expected, f"after a Ctrl-C at {where}"
        assert [p.name for p in dest.rglob(".drivestage-*")] == [], f"after {where}"
        assert _open_under(dest) == [], f"after a Ctrl-C at {where}"
        shutil.rmtree(dest)
    return call, check


def test_a_ctrl_c_at_each_thread_start_of_a_pull_extract(fast, emulator, tmp_path,
                                                         monkeypatch):
    """A zip, large enough for ranged streams and their measuring thread, extracted as it
    downloads."""
    members = {f"set/{i}.bin": os.urandom(60_000 + i) for i in range(4)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    call, check = _pulls(tmp_path, emulator, "drive:d/set.zip", {"set.zip": blob, **members},
                         extract=True, chunk_size=64 << 10)
    landed = _sweep(monkeypatch, call, check)
    assert len(landed) >= 2, landed


def test_a_ctrl_c_at_each_thread_start_of_a_folder_pull(fast, emulator, tmp_path,
                                                        monkeypatch):
    members = {f"z/{i}.bin": os.urandom(500 + i) for i in range(3)}
    files = {"a.txt": os.urandom(1000), "sub/c.txt": os.urandom(900),
             "set.tgz": a_tgz(members), "big.bin": os.urandom(300_000)}
    for rel, data in files.items():
        emulator.add_file(f"d/F/{rel}", data)
    call, check = _pulls(tmp_path, emulator, "drive:d/F", {**files, **members}, inside="F",
                         extract=True, chunk_size=64 << 10, jobs=2)
    landed = _sweep(monkeypatch, call, check)
    assert len(landed) >= 2, landed


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_a_ctrl_c_at_each_thread_start_of_a_local_archive_s_pull_extract(
        fast, emulator, tmp_path, monkeypatch, kind):
    """A local archive is hashed and extracted in one read (hashed_pass): its reading
    thread, started as the read began, was nobody's after a Ctrl-C there: it read on from
    a descriptor closed (or, reused, another file's) and waited for room for good."""
    members = {f"set/{i}.bin": os.urandom(3000 + i) for i in range(4)}
    blob = a_zip(members) if kind == "zip" else a_tgz(members)
    original = tmp_path / f"set.{kind}"
    original.write_bytes(blob)
    call, check = _pulls(tmp_path, emulator, str(original), members, extract=True)
    landed = _sweep(monkeypatch, call, check)
    assert any("drivestage-hash" in w for w in landed), landed


def test_a_ctrl_c_at_each_thread_start_of_a_push(fast, emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    src = tmp_path / "run"
    src.mkdir()
    files = {f"f{i}.txt": os.urandom(2000 + i) for i in range(3)}
    files["big.bin"] = os.urandom(600_000)
    for name, data in files.items():
        (src / name).write_bytes(data)
    store = drivestage.connect()
    want = sorted((n, hashlib.md5(d).hexdigest()) for n, d in files.items())

    def call(k: int) -> None:
        push(str(src), f"runs/r{k}", store=store, jobs=2, chunk_size=256 << 10)

    def check(k: int, where: str) -> None:
        got = sorted((e.name, e.md5) for e in store.list(store.resolve(f"runs/r{k}")))
        assert got == want, f"after a Ctrl-C at {where}"
        assert _open_under(src) == [], f"after a Ctrl-C at {where}"
    landed = _sweep(monkeypatch, call, check)
    assert len(landed) >= 1, landed


@pytest.mark.parametrize("how", ["Mirror", "CheckpointSync"])
def test_a_ctrl_c_as_a_mirror_s_thread_starts_leaves_no_mirror_running(
        fast, emulator, tmp_path, monkeypatch, how):
    """``m = Mirror(...).start()`` (or ``CheckpointSync(...)``) in a notebook cell, a Ctrl-C
    as the mirror's thread started: ``m`` was never set, and the thread pushed every period
    for the kernel's life, out of reach of any stop (a second cell made a second one)."""
    from drivestage.hooks import CheckpointSync
    from drivestage.mirror import Mirror

    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    src = tmp_path / "run"
    src.mkdir()
    (src / "a.txt").write_bytes(b"hello")
    emulator.add_folder("runs")
    store = drivestage.connect()
    before = set(threading.enumerate())
    with monkeypatch.context() as m:
        _CtrlCAtStart(m, 1, "drivestage-mirror")
        with pytest.raises(KeyboardInterrupt):
            if how == "Mirror":
                Mirror(str(src), (store, "runs"), every=0.05).start()
            else:
                CheckpointSync("runs", local_dir=str(src), every=0.05, store=store)
    assert _none_left(10, before) == [], "the mirror's thread runs on, nobody's"
    assert store.list(store.resolve("runs")) == [], "the mirror nobody holds pushed"


def _in(thread: threading.Thread, function: str) -> bool:
    frame = current_frames().get(thread.ident)
    while frame is not None and frame.f_code.co_name != function:
        frame = frame.f_back
    return frame is not None


def test_a_ctrl_c_as_a_local_archive_s_reading_thread_starts_stops_that_thread(
        emulator, tmp_path, monkeypatch):
    """The reading thread of a local archive's hashed pass already ahead (its queue full,
    waiting for room) when the Ctrl-C its start held back is raised: nobody got the reader
    to stop it, and it waited for room for good, 8 MiB held (a notebook's every such
    Ctrl-C one more)."""
    members = {f"set/{i}.bin": os.urandom(3 << 20) for i in range(4)}
    original = tmp_path / "set.zip"
    original.write_bytes(a_zip(members))
    before = set(threading.enumerate())
    real, main = threading.Thread.start, threading.main_thread()
    readers: list = []

    def start(thread: threading.Thread) -> None:
        real(thread)
        if thread.name == "drivestage-hash" and not readers:
            readers.append(thread)
            while not _in(thread, "_put") or not _in(thread, "put"):   # (its queue full)
                threading.Event().wait(0.005)
            signal.pthread_kill(main.ident, signal.SIGINT)
    monkeypatch.setattr(threading.Thread, "start", start)
    with pytest.raises(KeyboardInterrupt):
        pull(str(original), str(tmp_path / "d"), extract=True, quiet=True)
    monkeypatch.undo()
    assert readers, "the hashed pass was not reached"
    assert _none_left(10, before) == [], "the reading thread waits for room, nobody's"
    pull(str(original), str(tmp_path / "d"), extract=True, quiet=True)
    assert tree(tmp_path / "d") == members


def test_a_ctrl_c_as_a_mount_probe_starts_leaves_one_probe_stuck_at_most(
        working_drive_mount, monkeypatch):
    """A look at a hung mount whose probe's start a Ctrl-C cut: the probe, stuck in the
    kernel, was not kept, and the next look started another stuck one (a trainer looks
    every minute)."""
    from drivestage.lost_mounts import lost_mount

    def probes() -> int:
        return sum(t.name == "drivestage-mount-probe" and t.is_alive()
                   for t in threading.enumerate())

    mount = working_drive_mount
    inside = str(mount.point / "MyDrive" / "logs")
    mount.hang()
    try:
        with monkeypatch.context() as m:
            _CtrlCAtStart(m, 1, "drivestage-mount-probe")
            with pytest.raises(KeyboardInterrupt):
                lost_mount(inside, within=0.2)
        for _ in range(3):
            assert lost_mount(inside, within=0.2) is None
        assert probes() == 1
    finally:
        mount.answer()
    for probe in [t for t in threading.enumerate() if t.name == "drivestage-mount-probe"]:
        probe.join(10)
    mount.disconnect()
    assert lost_mount(inside) == str(mount.point)


def test_a_ctrl_c_at_each_thread_start_of_a_large_pull_by_host_name(
        fast, emulator, tmp_path, monkeypatch, small_splits):
    """A file large enough for the streams' measuring thread, from the emulator by name
    (``localhost``: each new connection's lookup runs in a thread of its own). Large as
    the split thresholds are lowered (``small_splits``: 256 KiB, not 32 MiB): the same
    thread starts as 40 MiB under the real ones, each point pulling 1 MiB, not 40 (22 s of
    CI's time)."""
    data = os.urandom(1 << 20)
    emulator.add_file("d/big.bin", data)
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url.replace("127.0.0.1", "localhost"))
    call, check = _pulls(tmp_path, emulator, "drive:d/big.bin", {"big.bin": data}, fresh=True)
    landed = _sweep(monkeypatch, call, check)
    names = {w.rsplit(" ", 1)[-1] for w in landed}
    assert {"drivestage-lookup", "drivestage-hash", "drivestage-streams"} <= names, landed
