"""Mirror: the background thread's scheduling (coalescing, flush, errors), and push + prune."""
from __future__ import annotations

import threading
import time

import pytest

from drivestage.errors import MirrorError, UsageError
from drivestage.mirror import Mirror
from drivestage.upload_tree import PushResult


class _Gate:
    """A push stand-in for scheduling tests: counts runs, can block, can fail."""

    def __init__(self):
        self.calls = 0
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.fail: BaseException | None = None

    def __call__(self, src, dest, policy, **kwargs):
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10)
        if self.fail is not None:
            raise self.fail
        return PushResult(unchanged=self.calls)


def _mirror(gate, **kw):
    return Mirror("src", "dest", None, store=object(), push_fn=gate, **kw)


def test_sync_now_returns_at_once_and_bursts_coalesce(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path))
    gate = _Gate()
    gate.release.clear()
    m = _mirror(gate).start()
    m.sync_now()
    assert gate.entered.wait(5)
    for _ in range(50):            # a burst while the first run is blocked: none of them waits
        m.sync_now()
    assert gate.calls == 1 and not gate.release.is_set()
    gate.release.set()
    m.flush(10)
    # the first run, one coalesced run for the burst, and at most one for the flush
    assert 2 <= gate.calls <= 3
    m.stop(10)


def test_flush_raises_the_failure_and_the_thread_survives(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path))
    gate = _Gate()
    gate.fail = OSError("drive is down")
    m = _mirror(gate).start()
    with pytest.raises(MirrorError, match="drive is down"):
        m.flush(10)
    gate.fail = None
    result = m.flush(10)           # next run succeeds: the thread is still there
    assert result is not None and m.last_error is None
    m.stop(10)


def test_periodic_runs_and_stop_flushes(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path))
    gate = _Gate()
    m = _mirror(gate, every=0.05).start()
    deadline = time.monotonic() + 5
    while gate.calls < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.calls >= 3
    before = gate.calls
    m.stop(10)
    assert gate.calls >= before + 1
    with pytest.raises(MirrorError):
        m.sync_now()


def test_stop_after_abandon_pushes_nothing_and_returns_no_result(tmp_path, monkeypatch):
    # abandon() (a notebook's second Ctrl-C), then the program stops the mirror as usual. No
    # final push was made: stop() must not hand back an earlier run's result as if it were
    # that push's, nor push again.
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path))
    gate = _Gate()
    m = _mirror(gate).start()
    assert m.flush(10) == PushResult(unchanged=1)
    assert m.abandon(10) is True
    assert m.stop(10) is None
    assert gate.calls == 1
    with pytest.raises(MirrorError, match="the mirror is stopped"):
        m.flush(10)


def test_bad_period_is_a_usage_error():
    with pytest.raises(UsageError, match="every"):
        Mirror("src", "dest", every=0)


def test_mirror_survives_drive_failures_and_catches_up(emulator, tmp_path, monkeypatch):
    """Real push against the emulator: failing periods are logged, the next one succeeds."""
    from drivestage.drive import connect

    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    src = tmp_path / "logs"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    store = connect(api_root=emulator.url, token="test-token")
    emulator.faults.inject(None, r"^/upload/", status=503, times=None)
    m = Mirror(str(src), "logs", None, store=store, every=0.05).start()
    with pytest.raises(MirrorError, match="503"):
        m.flush(30)
    runs = m.runs
    emulator.faults.clear()
    m.flush(30)
    assert m.runs > runs and m.last_error is None
    assert emulator.find("logs/a.txt")["md5Checksum"] == "0cc175b9c0f1b6a831c399e269772661"
    m.stop(30)


# ------------------------------------------- abandon() while a flush() waits in another thread

CHUNK = 256 * 1024


@pytest.mark.parametrize("flushed", ["the-run-under-way", "the-next-run"])
def test_a_flush_waiting_when_the_mirror_is_abandoned_says_so(emulator, tmp_path, monkeypatch,
                                                              flushed):
    """A notebook's flush() waits in one thread; another abandons the mirror (a second
    Ctrl-C) while the push uploads a checkpoint. The flush ends at once with a line that
    says the mirror was abandoned: it said "failed: " with nothing after it when its push
    was the one cut, and waited for good (or said "the thread is not running") when its
    push was the one after it, which never starts."""
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    src = tmp_path / "logs"
    src.mkdir()
    (src / "last.pt").write_bytes(b"w" * (4 * CHUNK + 1))
    store = connect(api_root=emulator.url, token="test-token")
    uploading, go_on = threading.Event(), threading.Event()

    def stalls_mid_upload(n: int) -> None:  # the push's progress: the adversary's moment
        uploading.set()
        assert go_on.wait(10)

    def push_fn(*args, **kwargs):
        return push(*args, progress=stalls_mid_upload, **kwargs)

    m = Mirror(str(src), "logs", None, store=store, chunk_size=CHUNK, push_fn=push_fn,
               label="drive:logs")
    if flushed == "the-next-run":
        m.start().sync_now()          # a run under way; the flush waits for the one after
        assert uploading.wait(10)
    outcome: list = []

    def flush() -> None:
        try:
            outcome.append(m.flush(30))
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=flush)
    waiter.start()
    assert uploading.wait(10)
    assert m.abandon(0) is False      # the upload is stalled: the thread is still there
    go_on.set()
    waiter.join(30)
    assert not waiter.is_alive(), "flush() still waits after abandon()"
    assert m.abandon(10) is True
    assert len(outcome) == 1 and isinstance(outcome[0], MirrorError), outcome
    assert str(outcome[0]) == (
        f"mirror of {src} to drive:logs was abandoned (abandon()) before this flush's push "
        "was done; a cut upload resumes on the next push")
    assert emulator.find("logs/last.pt") is None
