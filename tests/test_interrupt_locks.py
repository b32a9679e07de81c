"""A Ctrl-C lands between any two bytecodes of the main thread: it must never leave a lock
held that other threads need (a ``pull -x`` interrupted while it followed its download hung
that way, about once in 15 tries on a loaded machine: drivestage.interrupts).

The interrupt is raised where Python would raise it, at the start of a function the main
thread calls (a trace function raising KeyboardInterrupt on the K-th call), for every K
until the work ends by itself: a deterministic sweep instead of signals that land by chance.
"""
from __future__ import annotations

import dis
import gc
import os
import signal
import sys
import threading
import traceback
from typing import Iterator, NamedTuple

import pytest

import drivestage
from drivestage.download import Download, remove_partial
from drivestage.interrupts import BackgroundThread, Flag, Monitor
from drivestage.locks import place_lock
from _leaks import open_targets
from _sweep import every


#: :func:`_after_calls` of each code object a sweep met: a sweep runs its work again for
#: each point, and reading the same functions' bytecode again each time was most of its cost.
_AFTER_CALLS: dict = {}


def _after_calls(code) -> frozenset[int]:
    """Where CPython 3.11 checks for a signal inside ``code`` besides its start: as a call
    returns, and at a backward jump. A signal that a call's end finds is raised by the
    call itself, so it is emulated at the next instruction only where that one has the
    same exception handler (within the same ``try``)."""
    points = _AFTER_CALLS.get(code)
    if points is None:
        points = _AFTER_CALLS[code] = _read_after_calls(code)
    return points


def _read_after_calls(code) -> frozenset[int]:
    def handler(offset: int):
        return next(((e.start, e.target) for e in table if e.start <= offset < e.end), None)

    table = dis._parse_exception_table(code)
    ins = list(dis.get_instructions(code))
    points = {b.offset for a, b in zip(ins, ins[1:])
              if a.opname.startswith("CALL") and handler(a.offset) == handler(b.offset)}
    points.update(i.offset for i in ins if i.opname.startswith("JUMP_BACKWARD"))
    return frozenset(points)


class _InterruptAt:
    """A trace function for ``sys.settrace`` that raises KeyboardInterrupt at the start of
    the ``k``-th function called in this thread (``calls``: how many there were), counting
    only functions in files under ``only_under``; with ``opcodes``, at the ``k``-th place
    where Python could run a signal handler instead (a function's start, after each call,
    a backward jump)."""

    def __init__(self, k: int, only_under: str = "", opcodes: bool = False,
                 sites: "dict | None" = None):
        self.k, self.calls, self.only_under, self.opcodes = k, 0, only_under, opcodes
        self.where = ""
        # With ``sites`` (a sweep's, function starts only): where the sweep's points landed
        # so far, the function called and the whole stack that called it (each frame's
        # function and line) -> the point's ``k``. A call from the ``k``-th on at a site
        # there is passed over for the next one: the 2nd and the 30th pass of one loop
        # through one call are the same path, interrupted the same way (a sweep's points
        # landed on the same few loops). The caller alone was not enough: one function
        # called from one line, inside a block that holds a Ctrl-C back on one path and
        # outside any on another, is two sites (a descriptor leak put there on purpose was
        # then missed). The one it lands on is added.
        self.sites = sites
        assert sites is None or not opcodes

    def __call__(self, frame, event, arg):
        # At the first event, the closure below takes over as the thread's trace function:
        # an instance's __call__ (and a method call per counted call) at every call the
        # thread made doubled a traced pull's CPU (17-18 ms a small pull -x instead of 9-12).
        # Held by the instance too, not by the thread state alone: CPython 3.11's call_trace()
        # holds the trace function borrowed while it makes the called frame's object, and a
        # collection run there (threading's _dangling WeakSet losing a BackgroundThread's
        # cycle) ran a weakref callback this tracer landed in, whose sys.settrace(None)
        # freed the function call_trace() then called: a segfault (segv51's note).
        self._tracing = trace = self._trace()
        sys.settrace(trace)
        return trace(frame, event, arg)

    def _trace(self):
        only, opcodes, opcodes_of, land = self.only_under, self.opcodes, self._opcodes_of, \
            self._land
        # The collector's callbacks (hypothesis times its collections once a hypothesis test
        # ran in this worker) run inside whatever allocated: a Ctrl-C there is lost by Python
        # itself ("Exception ignored in: gc_callback"), no point of the code under test.
        collector = {getattr(cb, "__code__", None) for cb in gc.callbacks}

        def trace(frame, event, arg):
            if event == "call" and frame.f_code.co_filename.startswith(only) and \
                    frame.f_code not in collector:
                self.calls += 1
                if self.calls == self.k:
                    land(frame)
                if opcodes:
                    local = opcodes_of(frame.f_code)
                    # f_trace first: CPython 3.12+ (Colab's 3.13) turns opcode events on
                    # only for a frame that already has its local tracer, and without this
                    # it silently sent none, so every opcode sweep there met function starts
                    # alone.
                    frame.f_trace = local
                    frame.f_trace_opcodes = True
                    frame.f_trace_lines = False   # (only opcodes count: no call per line too)
                    return local
            return None
        return trace

    def _opcodes_of(self, code):
        """The local tracer of a frame of ``code``: counts its :func:`_after_calls` points.
        Made per call with the points at hand: the tracer runs at every bytecode, and one
        bound method looking the frame's code up in :data:`_AFTER_CALLS` at each took this
        file's sweeps 12.4-13.1 s instead of 3.6-4.1 (the same points, in the same order)."""
        points = _AFTER_CALLS.get(code)
        if points is None:
            points = _after_calls(code)
        land = self._land

        def local(frame, event, arg):
            if event == "opcode" and frame.f_lasti in points:
                self.calls += 1
                if self.calls == self.k:
                    land(frame)
            return local
        return local

    def _land(self, frame) -> None:
        """The ``k``-th point, in ``frame``: the Ctrl-C (or, with ``sites``, at a site
        already landed on, the next point instead)."""
        if self.sites is not None:
            stack: list = [frame.f_code]   # (the function called)
            caller = frame.f_back
            while caller is not None:
                stack += (caller.f_code, caller.f_lineno)
                caller = caller.f_back
            site = tuple(stack)
            if site in self.sites:
                self.k += 1
                return
            self.sites[site] = self.k
        sys.settrace(None)
        self.where = " <- ".join(  # for messages: where it landed
            f"{os.path.basename(f.f_code.co_filename)}:{f.f_code.co_name}:{line}"
            for f, line in list(traceback.walk_stack(frame))[:6])
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler) and handler is not signal.default_int_handler:
            # What a real Ctrl-C does then: the handler runs (drivestage.interrupts.
            # deferred notes it and raises it once its block is done).
            handler(signal.SIGINT, frame)
            return
        raise KeyboardInterrupt


def _interrupted_at(k: int, work, opcodes: bool = False,
                    allowed: type[BaseException] = BaseException,
                    only_under: str = "") -> tuple[bool, int]:
    """Run ``work()`` with a Ctrl-C at its ``k``-th call (or bytecode): (whether it landed,
    calls seen)."""
    tracer = _InterruptAt(k, opcodes=opcodes, only_under=only_under)
    sys.settrace(tracer)
    try:
        work()
    except allowed:
        # By default not only KeyboardInterrupt: inside CPython's own Thread.start() an
        # interrupt at the wrong bytecode turns into "RuntimeError: release unlocked lock"
        # (its Event's Condition). What matters there is what is left behind.
        if tracer.calls < k:
            raise
        return True, tracer.calls
    finally:
        sys.settrace(None)
    # Landed, yet nothing raised: Python itself lost the Ctrl-C (it landed in a weakref
    # callback or a collector's callback: "Exception ignored in"). Not the work's end: that
    # ended the sweep there, at point 3 or 9 of start_thread's in 8 sweeps of 20.
    return bool(tracer.where), tracer.calls


def _ends_within(fn, seconds: float) -> bool:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(seconds)
    return not t.is_alive()


@pytest.mark.slow
def test_a_ctrl_c_at_any_call_of_a_download_leaves_its_lock_free(emulator, drive_env,
                                                                 tmp_path):
    """At every place the main thread could take a Ctrl-C while a download runs, it leaves the
    download's lock free (its streams, hash and a following extraction need it) and the
    download stops within seconds, its partial kept for a rerun (every 3rd place by default,
    see tests/_sweep.py: 34 s for all of them)."""
    data = os.urandom(256 << 10)
    emulator.add_file("d/f.bin", data)
    store = drivestage.connect()
    entry = store.resolve("d/f.bin")
    target = str(tmp_path / "f.bin")
    landed = 0
    step = every(3)
    for k in range(1, 2000, step):
        dl = Download(store, entry, target, jobs=2, chunk_size=64 << 10)
        hit, calls = _interrupted_at(k, dl.run, opcodes=True)
        if not hit:
            assert open(target, "rb").read() == data
            break
        landed += 1
        assert not dl.lock._is_owned(), f"the download's lock is still held after a " \
            f"Ctrl-C at call {k}"
        assert _ends_within(dl.close, 10), f"the download did not stop after a Ctrl-C at " \
            f"call {k}"
        assert _ends_within(lambda: dl.lock.acquire() and dl.lock.release(), 10)
        remove_partial(dl.partial)  # the next one starts from zero again
    assert landed > 50 // step  # the sweep went through the whole download


def test_a_ctrl_c_at_any_bytecode_inside_a_monitor_leaves_it_as_the_with_blocks_say():
    """The lock itself, waited on and notified as the download does: interrupted before
    any bytecode, it is never left held, and no ``with`` block fails to release it
    (threading.Condition fails both)."""
    landed = 0
    lock = Monitor()

    def work() -> None:
        for _ in range(3):
            with lock:
                lock.notify_all()
                lock.wait(0.001)
            with lock:
                with lock:  # reentrant
                    pass

    for point in _each_ctrl_c(work):
        landed += 1
        assert not lock._is_owned(), f"held after a Ctrl-C at {point}"
        lock = Monitor()   # (the next point's)
    assert landed >= 10


def test_a_flag_set_by_a_signal_handler_while_the_main_thread_waits_for_it():
    """``push --every`` and the emulator's command wait for a flag their signal handlers
    set. A handler runs at any bytecode of the main thread, also inside the flag's own wait
    while it holds the flag's lock: threading.Event then deadlocks on its own lock. Here the
    handler's moment is every call and line of the wait, in turn."""
    swept = 0
    for k in range(1, 1000):
        flag = Flag()
        state = {"events": 0, "done": False}

        def handler_at_k(frame, event, arg):
            state["events"] += 1
            if state["events"] == k:
                flag.set()  # what the commands' signal handlers do
            return handler_at_k

        def waiting() -> None:
            sys.settrace(handler_at_k)
            try:
                flag.wait(0.01)
            finally:
                sys.settrace(None)
            state["done"] = True

        t = threading.Thread(target=waiting, daemon=True)
        t.start()
        t.join(10)
        assert state["done"], f"the wait deadlocked when the handler ran at event {k}"
        if state["events"] < k:
            break  # every moment of a wait was tried
        swept += 1
    assert swept >= 10



def test_a_ctrl_c_at_any_point_of_a_place_lock_leaves_it_free(tmp_path, monkeypatch):
    """The lock one push into a place holds (drivestage.locks): a Ctrl-C at any place the
    main thread could take it, while the lock is taken, held or given back, leaves it
    free for the next push in this process (acquire() then try/finally left it held for
    good when the interrupt landed between the two)."""
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    root = os.path.dirname(drivestage.__file__)

    def work() -> None:
        with place_lock("test:place", "drive:runs"):
            pass

    landed = 0
    for point in _each_ctrl_c(work, only_under=root):
        landed += 1
        assert _ends_within(work, 5), f"the place stayed locked after a Ctrl-C at {point}"
    assert landed >= 5


@pytest.mark.parametrize("kind", ["BackgroundThread", "threading.Thread"])
def test_a_ctrl_c_inside_join_never_makes_a_running_thread_look_ended(kind):
    """A Ctrl-C at each point of ``join()`` while the thread still works: afterwards it is
    still alive and a second ``join()`` waits for its work. CPython 3.11's own Thread fails
    this (its tstate lock is released and the thread marked stopped), which is why the
    mirror and the checkpoint writer run as BackgroundThreads; the threading.Thread case
    shows the sweep reaches that window (it is expected to fail there)."""
    if kind == "threading.Thread" and not hasattr(threading.Thread, "_wait_for_tstate_lock"):
        pytest.skip("no Python-level tstate lock here")
    k, fooled = 0, 0
    while True:
        k += 1
        release, done = threading.Event(), []

        def work() -> None:
            release.wait(10)
            done.append(True)

        if kind == "BackgroundThread":
            bt = BackgroundThread(work, "drivestage-test").start()
            alive, join = bt.is_alive, bt.join
        else:
            t = threading.Thread(target=work, daemon=True)
            t.start()
            alive, join = t.is_alive, t.join
        hit, _ = _interrupted_at(k, lambda: join(0.01), opcodes=True,
                                 allowed=KeyboardInterrupt)
        looked_alive = alive()
        release.set()
        join(10)
        waited = bool(done)  # the second join() waited for the work
        if kind == "BackgroundThread":
            assert looked_alive and waited, f"a Ctrl-C at point {k} of join()"
        elif not (looked_alive and waited):
            fooled += 1
        if not hit:
            break
    if kind == "threading.Thread":
        assert fooled > 0  # the window is real, and the sweep reaches it


def test_a_ctrl_c_at_any_point_of_starting_a_background_thread_leaves_it_joinable():
    """A Ctrl-C at each point of ``BackgroundThread.start()``: afterwards the thread either
    never started or does its work, and ``join()`` returns. CPython's ``Thread.start()``
    cut inside its wait for the new thread can leave that Event's lock held: the new thread
    then waited for it for good before its first line, and a download's close(), joining
    its hash thread, waited with it (found by the sweep of a download above once its calls
    moved by a few)."""
    k = 0
    while True:
        k += 1
        bt = BackgroundThread(lambda: None, "drivestage-test")
        hit, _ = _interrupted_at(k, bt.start, opcodes=True)
        assert bt.join(10), f"the thread neither ran nor ended after a Ctrl-C at point {k}"
        # Whether the new thread got there first or not (it waits for it when not), the
        # lock is held by nobody once the thread's work is done.
        assert not bt.thread._started._cond._lock.locked(), \
            f"start()'s Event left locked after a Ctrl-C at point {k}"
        if not hit:
            break
    assert k > 10


def _open_under(folder) -> list[str]:
    """What this process's descriptors still open under ``folder`` name (Linux)."""
    return [target for target in open_targets() if target.startswith(str(folder))]


# drivestage's own code: where a descriptor is opened and handed on (a sweep through
# zipfile's or threading's code as well takes ten times as long and finds nothing more).
_OURS = os.path.dirname(drivestage.__file__)


class _Point(NamedTuple):
    """A point of a sweep its Ctrl-C landed at: its number, where it landed, and the type of
    what the work raised (None: nothing, the Ctrl-C lost by Python in a finalizer or a
    weakref or collector's callback, or noted by a handler that let the work end). The type
    only: the exception's traceback holds the interrupted frames, and with them what the
    caller checks was let go (a ``with`` block's generator never closed, its file open)."""
    k: int
    where: str
    raised: "type[BaseException] | None"

    def __str__(self) -> str:
        return f"point {self.k} ({self.where})"


def _each_ctrl_c(work, only_under: str = "", opcodes: bool = True, step: int = 1,
                 ends_in: tuple = (), between=None) -> Iterator[_Point]:
    """Run ``work()`` with a Ctrl-C at each of its points in turn (every ``step``-th: with
    ``opcodes`` where Python could run a signal handler, else each function's start; only in
    code under ``only_under``), until one run ends before its point; yields each point landed
    at (the caller checks what it left). ``ends_in``: the exceptions the work may end in
    besides a Ctrl-C (any other fails the sweep); ``between()`` runs after each run, outside
    the tracer.

    A point counts as landed once the Ctrl-C was sent there, whatever reached the caller: a
    sweep that took "nothing raised" for its work's end stopped at the first Ctrl-C Python
    lost, short of the rest (segv51: at point 3 or 9 of start_thread's in 8 sweeps of 20).
    And a sweep that ends short fails: the work is run first with no Ctrl-C (twice: the
    first run's one-time work, a cache filled or a module imported, is no point of the
    others), and the sweep must get past every point that run had."""
    full = 0
    for _ in range(2):
        counter = _InterruptAt(0, only_under=only_under, opcodes=opcodes)   # (lands nowhere)
        sys.settrace(counter)
        try:
            work()
        except ends_in:
            pass
        finally:
            sys.settrace(None)
        if between is not None:
            between()
        full = counter.calls
    k = 1 - step
    while True:
        k += step
        assert k < 1_000_000, f"the sweep reached point {k} of a work of {full}: no end"
        tracer = _InterruptAt(k, only_under=only_under, opcodes=opcodes)
        raised = None
        sys.settrace(tracer)
        try:
            work()
        except (KeyboardInterrupt, *ends_in) as exc:
            if not tracer.where and not isinstance(exc, ends_in):
                raise
            raised = type(exc)
        finally:
            sys.settrace(None)
        if between is not None:
            between()
        if not tracer.where:
            break
        yield _Point(k, tracer.where, raised)
    assert k > full, f"the sweep ended at point {k} ({tracer.calls} in its last run), " \
        f"short of the {full} a run of its work has"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors in /proc")
@pytest.mark.parametrize("write", ["atomic_write", "atomic_write_at"])
def test_a_ctrl_c_at_any_point_of_an_atomic_write_leaves_no_file_open(tmp_path, write):
    """A range record is saved by an atomic write many times a download. A Ctrl-C just after
    its temporary file was created, before a file object held it (``os.fdopen``'s first
    line), removed the file and left its descriptor open: a notebook's kernel kept one more
    deleted file open for each such Ctrl-C (found by tests/conftest.py's leftover check)."""
    from drivestage import localfs

    folder = tmp_path / "d"
    folder.mkdir()
    dir_fd = os.open(folder, os.O_RDONLY)
    if write == "atomic_write":
        def work() -> None:
            localfs.atomic_write(str(folder / "f.ranges"), b"{}")
    else:
        def work() -> None:
            localfs.atomic_write_at(dir_fd, "f.ranges", b"{}")
    landed = 0
    try:
        for point in _each_ctrl_c(work):
            landed += 1
            assert [f for f in _open_under(folder) if f != str(folder)] == [], \
                f"a Ctrl-C at {point} left a file open"
            assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == [], \
                f"a Ctrl-C at {point} left the temporary file"
    finally:
        os.close(dir_fd)
    assert landed >= 10


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors in /proc")
def test_a_ctrl_c_at_any_point_of_a_sidecars_private_copy_leaves_no_file(tmp_path, monkeypatch):
    """A push sends a checkpoint's sidecar from a private copy in the temporary folder. A
    Ctrl-C between ``mkstemp`` and the file object (``os.fdopen``'s first line) left the
    descriptor open and the copy in $TMPDIR, where no sweep removes it while the notebook's
    process lives; one as the copy was handed to the push, the copy."""
    import tempfile

    from drivestage import sidecar_copy

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    # tempfile's first name in a process is made under a plain lock taken before its `try`:
    # a Ctrl-C there left it held, and every later tempfile call of the process (here, the
    # next point's) waited for good. Made before the sweep, so that without the fix this test
    # fails instead of hanging; with it, no Ctrl-C lands inside mkstemp.
    tempfile._get_candidate_names()

    from drivestage.store import RemoteEntry

    side = tmp_path / "epoch_001.json"
    side.write_bytes(b'{"epoch": 1, "iteration": 4, "md5": "%s"}' % (b"a" * 32))
    sent = [RemoteEntry(id="x", name="epoch_001.pt", is_dir=False, md5="a" * 32)]

    def work() -> None:  # what a push does with the sidecar it sends
        with sidecar_copy.checked(str(side), sent, sent) as copy:
            assert copy is not None and copy.startswith(str(folder))

    landed = 0
    for point in _each_ctrl_c(work):
        landed += 1
        assert _open_under(folder) == [], f"a Ctrl-C at {point} left a file open"
        assert os.listdir(folder) == [], f"a Ctrl-C at {point} left the copy"
    assert landed >= 10


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors in /proc")
def test_a_ctrl_c_at_any_point_of_a_state_folder_read_or_lock_leaves_no_descriptor(tmp_path):
    """A pull reads DEST's stamps and takes DEST's merge lock through the state folder's
    descriptor. A Ctrl-C right after one of its descriptors was opened (the folder's, the
    state folder's, a stamp's, the lock file's), before the code that closes it was
    entered, left it open for the notebook's lifetime. (A stamp's write: its atomic write
    is swept above, and the state folder is opened as here.)"""
    from drivestage import stamps
    from drivestage.extract.statedir import state_lock

    dest = tmp_path / "dest"
    stamps.write(str(dest), {"version": stamps.VERSION, "file": "a.zip", "id": "x1",
                             "md5": "0" * 32, "size": 1})

    def work() -> None:
        assert [name for name, _ in stamps._all(str(dest))]
        with state_lock(str(dest), "merge.flock", on_wait=None) as held:
            assert held

    landed = 0
    for point in _each_ctrl_c(work):
        landed += 1
        assert _open_under(dest) == [], f"a Ctrl-C at {point} left a descriptor open"
    assert landed >= 20


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors in /proc")
def test_a_ctrl_c_at_any_point_of_a_zip_directory_read_leaves_no_descriptor(tmp_path):
    """A pull reads the member list of a zip it is still downloading through the partial
    file's descriptor, from a duplicate of it. A Ctrl-C between ``os.dup`` and the file
    object that closes it (``os.fdopen``'s first lines) left the duplicate open for the
    notebook's lifetime: one more descriptor on a large partial file per Ctrl-C."""
    import zipfile

    from drivestage.extract.members import zip_directory

    folder = tmp_path / "d"
    folder.mkdir()
    archive = folder / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/a.txt", b"a")
        zf.writestr("x/b.txt", b"b")
    fd = os.open(archive, os.O_RDONLY)

    def work() -> None:
        assert [e.path for e in zip_directory(str(archive), fd)] == ["x/a.txt", "x/b.txt"]

    landed = 0
    try:
        for point in _each_ctrl_c(work, only_under=_OURS):
            landed += 1
            assert _open_under(folder) == [str(archive)], \
                f"a Ctrl-C at {point} left a descriptor open"
    finally:
        os.close(fd)
    assert landed >= 10


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors in /proc")
def test_a_ctrl_c_at_any_point_of_an_old_versions_removal_leaves_no_descriptor(tmp_path):
    """A pull of a new version removes what the old one wrote and the new one did not, each
    path through descriptors of DEST's real folders. A Ctrl-C right after one of them was
    opened, before the code that closes it, left a folder of DEST open for good."""
    from drivestage.extract.records import remove_members

    dest = tmp_path / "dest"
    paths = ["a/b/one.txt", "a/two.txt", "three.txt", "a/b", "a"]

    def work() -> None:
        (dest / "a" / "b").mkdir(parents=True, exist_ok=True)
        for rel in paths[:3]:
            (dest / rel).write_bytes(b"x")
        assert remove_members(str(dest), paths, keep={"three.txt"}) == 4
        assert sorted(os.listdir(dest)) == [".drivestage", "three.txt"]

    landed = 0
    for point in _each_ctrl_c(work, only_under=_OURS):
        landed += 1
        assert _open_under(dest) == [], f"a Ctrl-C at {point} left a descriptor open"
    assert landed >= 20


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors in /proc")
def test_a_ctrl_c_at_any_point_of_an_upload_sessions_claim_leaves_it_free(tmp_path):
    """An upload holds its session record by a byte lock on the claims file, released when
    the upload ends. A Ctrl-C on the way into the release's own Ctrl-C guard (``deferred``'s
    first line) left the name held and the claims file open for the notebook's lifetime
    (found by the push sweep of test_interrupt_commands.py, at call 2107): each later
    upload of that file there took a sibling record, and could never resume the first."""
    from drivestage.state import UploadSessions

    sessions = UploadSessions(tmp_path / "state" / "upload-sessions.json")

    def work() -> None:
        with sessions.claimed("k", lambda record: True) as name:
            assert name == "k"

    landed = 0
    for point in _each_ctrl_c(work, only_under=_OURS):
        landed += 1
        assert _open_under(tmp_path / "state") == [], f"a Ctrl-C at {point} left it open"
        with sessions.claimed("k", lambda record: True) as name:
            assert name == "k", f"a Ctrl-C at {point} left the claim held"
    assert landed >= 10


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors in /proc")
def test_a_ctrl_c_at_any_point_of_the_state_folders_lock_probe_leaves_no_descriptor(tmp_path):
    """The first push of a process asks whether its state folder's file system can lock
    files (drivestage.lockdir: a probe file, opened and flock'ed). A Ctrl-C held back while
    the probe opened is raised as the hold ends, before the ``try`` that closes it: the probe
    stayed open for the notebook's lifetime (found by the push sweep of
    test_interrupt_commands.py, once each point had its own state folder)."""
    from drivestage import lockdir

    def work() -> None:
        assert lockdir.cannot_lock(str(tmp_path)) is None

    landed = 0
    for point in _each_ctrl_c(work, only_under=_OURS):
        landed += 1
        assert _open_under(tmp_path) == [], f"a Ctrl-C at {point} left the probe open"
    assert landed >= 5
