"""Waits of the main thread with an end, but minutes away, that a Ctrl-C the kernel gave
another thread must end too (see tests/test_sigthread33.py, which shows the technique: the
signal is sent to a helper thread with ``pthread_kill``).

A ``Flag``'s or a ``BackgroundThread``'s wait with a timeout (a trainer's stop waits for
its save's write, its listing, its push a fraction of the grace; ``mirror`` abandons its
push waiting 3 s) and a retry's backoff (a ``Retry-After`` of up to 120 s) slept through it
until the timeout: the Ctrl-C was acted on only then.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from drivestage.interrupts import BackgroundThread, Flag
from drivestage.mirror import Mirror
from drivestage.upload_tree import PushResult
from test_sigthread33 import _ends_while_held, _interrupted_elsewhere, _say_started

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX threads")

#: A wait's timeout here: the Ctrl-C must end it long before (the holders let go at 20 s).
LONG = 60.0


def test_the_main_thread_waiting_on_a_flag_with_a_timeout_of_minutes():
    started, flag = threading.Event(), Flag()

    def hold(taken: threading.Event, let_go: threading.Event) -> None:
        taken.set()
        let_go.wait(20)
        flag.set()

    def wait() -> None:
        _say_started(started)
        flag.wait(LONG)

    _ends_while_held(hold, wait, started)


def test_the_main_thread_joining_a_background_thread_with_a_timeout():
    started, let_go = threading.Event(), threading.Event()
    worker = BackgroundThread(lambda: let_go.wait(20), "sigwait33-worker")

    def hold(taken: threading.Event, release: threading.Event) -> None:
        worker.start()
        taken.set()
        release.wait(20)
        let_go.set()
        worker.join(20)

    def wait() -> None:
        _say_started(started)
        worker.join(LONG)

    _ends_while_held(hold, wait, started)


class _Held:
    """A push that holds until told (it never reaches a chunk boundary: abandon() waits)."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, src, dest, policy, **kwargs) -> PushResult:
        self.entered.set()
        assert self.release.wait(20)
        return PushResult()


def test_a_notebook_abandoning_its_mirror_ends_on_a_ctrl_c_given_elsewhere(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path))
    push = _Held()
    mirror = Mirror("src", "dest", None, store=object(), push_fn=push).start()
    started = threading.Event()

    def hold(taken: threading.Event, let_go: threading.Event) -> None:
        mirror.sync_now()
        assert push.entered.wait(20)
        taken.set()
        let_go.wait(20)
        push.release.set()

    def wait() -> None:
        _say_started(started)
        mirror.abandon(LONG)

    _ends_while_held(hold, wait, started)
    assert mirror.abandon(20)   # and the thread ends once its push does


def test_a_pull_waiting_out_a_retry_after_ends_on_a_ctrl_c_given_elsewhere(
        emulator, drive_env, local_state, monkeypatch, tmp_path):
    from drivestage import pull
    from drivestage.drive import retry

    emulator.add_file("data/x.bin", b"x")
    monkeypatch.setenv("DRIVESTAGE_RETRY_AFTER_MAX", "120")
    # Drive asks for a minute's pause on the first lookup.
    emulator.faults.inject(method="GET", path=r"/files", status=503, reason="backendError",
                           retry_after=int(LONG), times=1)
    started, sleep = threading.Event(), retry._sleep

    def backoff(seconds: float) -> None:   # (the hook tests use; it only says when)
        _say_started(started)
        sleep(seconds)
    monkeypatch.setattr(retry, "_sleep", backoff)
    other = _interrupted_elsewhere(started)
    began = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            pull("drive:data/x.bin", str(tmp_path / "dest"), quiet=True)
        took = time.monotonic() - began
    finally:
        started.set()
        other.join(60)
    assert took < LONG / 3, f"the Ctrl-C was acted on after {took:.1f} s, at the retry"
    # The retry was never sent, nor anything pulled.
    assert [r.status for r in emulator.requests if r.method == "GET"] == [503]
    assert not (tmp_path / "dest" / "x.bin").exists()


def test_a_trainer_s_second_ctrl_c_while_its_stop_waits_for_a_save_on_a_slow_disk(
        tmp_path, monkeypatch):
    """The trainer's handler takes the first Ctrl-C for a stop and raises on the second: a
    main thread that waited for a save (half the grace, in ``stop_saved``; minutes where
    ``train.grace_seconds`` is) acted on that second one only once the save was written."""
    import torch

    from test_stop30_slow_disk import SlowDisk
    from trainer.state import Position
    from trainer.stopping import StopFlag
    from trainer.writer import BackgroundWriter, SaveJob

    logs = tmp_path / "logs"
    logs.mkdir()
    disk = SlowDisk(monkeypatch, str(logs))
    writer = BackgroundWriter(str(logs))
    state = {"format_version": 1, "model": {"w": torch.zeros(2)}, "optimizer": {}, "epoch": 1,
             "config": {}}
    job = SaveJob(state, ["autosave_00000003.pt"], Position(1, 3, 1))
    stop, started = StopFlag(LONG), threading.Event()

    def hold(taken: threading.Event, let_go: threading.Event) -> None:
        writer.submit(job)
        assert disk.began.wait(20)   # its write is under way, and waits for the disk
        taken.set()
        let_go.wait(20)
        disk.ends()

    def wait() -> None:
        with stop.installed():
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)   # the first: a stop
            assert stop.signalled
            _say_started(started)
            writer.wait(job, time.monotonic() + LONG / 2)

    try:
        _ends_while_held(hold, wait, started)
    finally:
        disk.ends()
        assert writer.close(lambda: time.monotonic() + 20)
    assert job.written and (logs / "autosave_00000003.pt").is_file()


def test_a_ctrl_c_while_the_image_cache_is_filled_stops_it(tmp_path, monkeypatch):
    """``data.cache=ram``: the Ctrl-C, given to one of the cache's threads, was acted on
    only once an image was done, and then every image of the dataset was decoded (the
    executor's exit waited for its queue) before the KeyboardInterrupt left the run."""
    from PIL import Image

    from drivestage import pool
    from trainer.data import cache

    paths = []
    for i in range(40):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (8, 8), (i, 0, 0)).save(path)
        paths.append(str(path))
    real, decoded, lock = cache.decode_fitted, [], threading.Lock()
    started = threading.Event()

    def decode(data, size, path=None):
        with lock:
            decoded.append(path)
            first = len(decoded) <= 2
            if len(decoded) == 2:
                started.set()   # one image under way in each thread
        if first:   # under way as the Ctrl-C comes: it ends once the fill was told to stop
            for _ in range(2000):
                try:
                    pool.check()
                except KeyboardInterrupt:
                    break
                threading.Event().wait(0.01)
        return real(data, size, path)

    monkeypatch.setattr(cache, "decode_fitted", decode)
    other = _interrupted_elsewhere(started)
    try:
        with pytest.raises(KeyboardInterrupt):
            cache.RamCache(paths, 32, threads=2)
    finally:
        started.set()
        other.join(60)
    assert len(decoded) == 2, f"{len(decoded)} images decoded after the Ctrl-C"


def test_a_call_waiting_for_another_thread_s_token_refresh(emulator_factory, local_state,
                                                           tmp_path, monkeypatch):
    """A notebook's call while the mirror's thread refreshes the token (the token server
    slow to answer: up to the HTTP timeout, 120 s, and google-auth's retries) waited for
    that refresh whatever Ctrl-C came."""
    from drivestage.drive import connect
    from test_auth import FRESH, TokenServer, _token_file

    for name in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN", "DRIVESTAGE_CREDENTIALS",
                 "DRIVESTAGE_TOKEN_FILE", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    emu = emulator_factory(token=FRESH)
    emu.add_file("data/a.txt", b"hello")
    server = TokenServer()
    store = connect(api_root=emu.url,
                    credentials=_token_file(tmp_path / "token.json", server.uri))
    answer, started, answered = server.answer, threading.Event(), threading.Event()
    late: list[bool] = []

    def hold(taken: threading.Event, let_go: threading.Event) -> None:
        def slow(form: dict):   # the token server has the refresh, and answers late
            taken.set()
            let_go.wait(20)
            answered.set()
            return answer(form)
        server.answer = slow
        assert store.resolve("data/a.txt").size == 5   # (expired: refreshed first)

    def wait() -> None:
        _say_started(started)
        try:
            store.resolve("data/a.txt")
        finally:
            late.append(answered.is_set())

    try:
        _ends_while_held(hold, wait, started)
        assert late == [False], "the wait ended only once the token server answered"
        assert store.resolve("data/a.txt").size == 5 and len(server.calls) == 1
    finally:
        server.stop()


def test_a_push_waiting_for_the_ids_another_thread_asks_drive_for(emulator, store,
                                                                   local_state, monkeypatch):
    """Ids for new files are asked of Drive under a lock held through the request's
    retries (minutes when Drive asks to wait): another push on the same store (a notebook's
    beside its Mirror, the trainer's branch record beside its uploader) waited for them."""
    from drivestage.drive import retry
    from drivestage.drive.ids import IdPool

    pool = IdPool(store.transport, emulator.url)
    emulator.faults.inject(method="GET", path=r"generateIds", status=503,
                           reason="backendError", times=1)
    started, answered = threading.Event(), threading.Event()
    late: list[bool] = []

    def hold(taken: threading.Event, let_go: threading.Event) -> None:
        def backoff(seconds: float) -> None:   # Drive's wait before the retry: until let go
            taken.set()
            let_go.wait(20)
            answered.set()
        monkeypatch.setattr(retry, "_sleep", backoff)
        assert pool.take_one()

    def wait() -> None:
        _say_started(started)
        try:
            pool.take(3)
        finally:
            late.append(answered.is_set())

    _ends_while_held(hold, wait, started)
    assert late == [False], "the wait ended only once the other thread had its ids"
    assert len(pool.take(3)) == 3


def test_a_pull_x_of_a_local_archive_whose_read_hangs_ends_on_a_ctrl_c(local_state, tmp_path,
                                                                      monkeypatch):
    """``pull /kaggle/input/x/set.zip data -x`` (one read that hashes and extracts), its
    mount hung after a block: the main thread waited for the reading thread's next block
    for good, whatever Ctrl-C came elsewhere; and, a Ctrl-C raised, its clean-up waited for
    that read to end (a Ctrl-C held back meanwhile), so the pull never ended either."""
    import drivestage.hashed_pass as hashed_pass
    from drivestage.stage import pull
    from test_attackpull26_hashed import _original, _zip

    monkeypatch.setattr(hashed_pass, "CHUNK", 64 << 10)
    archive = _original(tmp_path, _zip({f"m{i}": os.urandom(128 << 10) for i in range(4)}))
    real, read, started = hashed_pass._Reader._block, hashed_pass._Reader.read, threading.Event()
    hung, waits = threading.Event(), threading.Event()   # (hung set: it answers again)

    def block(self, offset):
        if offset >= 2 * hashed_pass.CHUNK:   # the mount hangs after two blocks
            waits.set()
            hung.wait(20)
        return real(self, offset)

    def reading(self, n):   # the extraction's read: it waits for the block that hangs
        if waits.is_set() and not self._buf and self._q.empty():
            started.set()
        return read(self, n)

    def hold(taken: threading.Event, let_go: threading.Event) -> None:
        taken.set()
        let_go.wait(20)
        hung.set()

    def wait() -> None:
        pull(str(archive), str(tmp_path / "d"), extract=True, quiet=True)

    monkeypatch.setattr(hashed_pass._Reader, "_block", block)
    monkeypatch.setattr(hashed_pass._Reader, "read", reading)
    try:
        _ends_while_held(hold, wait, started)
    finally:
        hung.set()
    assert os.listdir(tmp_path / "d") == [".drivestage"]   # nothing of it in DEST
