"""mirrorclaim43: a mirror's claim on DEST (drivestage.mirror_claim) is advisory, and its
requests ran on the mirror's push thread, inside its periods: a properties endpoint slow or
hanging (a 403 userRateLimitExceeded's retries, a 5xx, a request that waits out the socket's
timeout) held every period's push, and stop()'s final flush, the push that saves the last
checkpoint before a VM vanishes. Its requests now run in a thread of its own: here they hang
(the emulator holds every property request, 60 s) and the pushes, the final one too, are
done, stop() returns within the claim's small bound, and the claim lands once Drive answers
(dedupe refuses under it) and is removed at the end.
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import hashlib
import time
from typing import Callable

import pytest

from tests.test_guards41_dedupe import _run, _twins
from tests.test_leasefull42_dedupe_mirror import _mirror_props, _refused
from tests.test_messages_dedupe import live

#: The claim's requests: a property's insert or delete, and the read of the folder's
#: properties with their values (the sweep of gone mirrors' claims).
PROPS = r"/properties|fields=properties(%28|\()key(%2C|,)value"


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")


def _until(ready: Callable[[], bool], what: str, bound: float = 30.0) -> None:
    """A bounded poll of the emulator's state (its requests, its properties)."""
    deadline = time.monotonic() + bound
    while not ready():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _held(emulator) -> None:
    emulator.faults.latency(60, path=PROPS)


def _let_go(emulator) -> None:
    emulator.faults.clear()          # (no request held from now on)
    emulator.faults.release_holds()  # (those held answered now)
    emulator.faults.serving()


def _claim_asked(emulator) -> list:
    import re

    return [r for r in emulator.requests if re.search(PROPS, r.path + "?" + "&".join(
        f"{k}={v}" for k, v in r.query.items())) or "/properties" in r.path]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_pushes_and_the_final_flush_never_wait_for_a_hung_claim(emulator, store, tmp_path,
                                                                monkeypatch):
    from drivestage import mirror_claim
    from drivestage.mirror import Mirror

    monkeypatch.setattr(mirror_claim, "RELEASE_WAIT_S", 1.0, raising=False)
    old, new = _twins(emulator, store)
    src = tmp_path / "src"
    src.mkdir()
    (src / "m.txt").write_bytes(b"m")
    _held(emulator)
    mirror = Mirror(str(src), "drive:runs/exp", every=3600).start()
    try:
        mirror.sync_now()   # (the first period: its push, then the claim's first request)
        _until(lambda: bool(_claim_asked(emulator)), "the claim asked nothing")
        asked = _claim_asked(emulator)[0]
        (src / "n.txt").write_bytes(b"n" * 1000)
        took = time.monotonic()
        mirror.flush(20)   # (held 60 s: the claim's requests in the push's time, it timed out)
        took = time.monotonic() - took
        assert took < 15, took
        # The upload of n.txt came after the claim's request, and was done while that one
        # was held: never answered yet.
        order = emulator.requests
        up = [i for i, r in enumerate(order) if r.method == "POST" and "upload" in r.path]
        assert up and order.index(asked) < up[-1]
        assert asked.status == 0
        assert {k: v for k, v in live(emulator).items() if k.startswith("runs/exp/")} == {
            "runs/exp/a.txt": [_md5(b"a")], "runs/exp/b.txt": [_md5(b"b")],
            "runs/exp/m.txt": [_md5(b"m")], "runs/exp/n.txt": [_md5(b"n" * 1000)]}
        assert emulator.find("runs/exp/m.txt")["parents"][0]["id"] == old   # (the oldest)
        assert _mirror_props(emulator) == []
        # Drive answers: the claim lands (on the oldest, where the push wrote), and dedupe
        # refuses under it.
        _let_go(emulator)
        _until(lambda: len(_mirror_props(emulator)) == 1, "the claim never landed")
        assert [p["key"] for p in emulator.properties_of(old)
                if p["key"].startswith("drivestage-mirror-")] == _mirror_props(emulator)
        before = live(emulator)
        code, out, err = _run("dedupe", "drive:runs/exp")
        assert code == 1, err
        _refused(err, "drive:runs/exp")
        assert live(emulator) == before
        # The final flush, the properties endpoint hanging again: done, and stop() waits
        # for the claim's removal no longer than its bound.
        _held(emulator)
        (src / "o.txt").write_bytes(b"o" * 3000)
        took = time.monotonic()
        mirror.stop(30)
        took = time.monotonic() - took
        assert took < 10, took
        assert live(emulator)["runs/exp/o.txt"] == [_md5(b"o" * 3000)]
    finally:
        _let_go(emulator)
        mirror.stop(30)
    # The removal, held, is sent once Drive answers: nothing of the claim is left.
    _until(lambda: _mirror_props(emulator) == [], "the claim was never removed")
    code, out, err = _run("dedupe", "drive:runs/exp")
    assert code == 0, err


def test_a_dest_there_before_the_first_push_is_claimed_by_the_claims_own_lookup(
        emulator, store, tmp_path):
    """DEST is there: its claim was looked up and written before the first push, in that
    push's period. Held, the first push is done all the same, and the claim lands on DEST
    once Drive answers, with no push more; a stop removes it."""
    from drivestage.mirror import Mirror

    dest = emulator.add_folder("runs/exp")
    src = tmp_path / "src"
    src.mkdir()
    (src / "m.txt").write_bytes(b"m")
    _held(emulator)
    mirror = Mirror(str(src), "drive:runs/exp", every=3600).start()
    try:
        mirror.flush(20)   # (held 60 s: its lookup and sweep before the push, it timed out)
        assert live(emulator)["runs/exp/m.txt"] == [_md5(b"m")]
        _until(lambda: bool(_claim_asked(emulator)), "the claim asked nothing")
        assert _mirror_props(emulator) == []
        runs = len(emulator.requests)
        _let_go(emulator)
        _until(lambda: len(_mirror_props(emulator)) == 1, "the claim never landed")
        assert emulator.properties_of(dest)[0]["key"] == _mirror_props(emulator)[0]
        assert not [r for r in emulator.requests[runs:] if r.kind == "files.list"
                    or "upload" in r.path]   # (no push for it)
    finally:
        _let_go(emulator)
        mirror.stop(30)
    _until(lambda: _mirror_props(emulator) == [], "the claim was never removed")
