"""lefts44: a mirror's claim whose request Drive never answers kept its thread and its
connection until the socket's timeout (120 s, then the retries), long after the mirror had
stopped: in a notebook, a thread and a connection per mirror stopped while Drive hung. The
mirror's end waits for the claim's removal a bounded time (mirror_claim.RELEASE_WAIT_S);
past it the claim's thread is now cut at its request (as abandon() cuts a push), its
connection closed, and the thread ends. Here the emulator holds every property request (the
claim's sweep of gone mirrors' claims hangs) through the stop.
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import logging
import threading
import time

from tests.test_leasefull42_dedupe_mirror import _mirror_props
from tests.test_messages_dedupe import live
from tests.test_mirrorclaim43_held import _claim_asked, _held, _let_go, _md5, _until
from tests.test_mirrorclaim43_held import _world  # noqa: F401 (the fixture)


def _claim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "drivestage-mirror-claim"]


def test_a_claim_hung_at_the_stop_is_cut_its_connection_closed(emulator, store, tmp_path,
                                                                monkeypatch, caplog):
    from drivestage import mirror_claim
    from drivestage.mirror import Mirror

    monkeypatch.setattr(mirror_claim, "RELEASE_WAIT_S", 0.5)
    dest = emulator.add_folder("runs/exp")
    src = tmp_path / "src"
    src.mkdir()
    (src / "m.txt").write_bytes(b"m")
    before = set(_claim_threads())
    _held(emulator)
    mirror = Mirror(str(src), "drive:runs/exp", every=3600).start()
    try:
        mirror.flush(20)
        _until(lambda: bool(_claim_asked(emulator)), "the claim asked nothing")
        asked = _claim_asked(emulator)[0]
        assert asked.status == 0 and not emulator.hung_up(asked.connection)   # (held, open)
        (src / "n.txt").write_bytes(b"n" * 100)
        with caplog.at_level(logging.DEBUG, logger="drivestage.mirror_claim"):
            took = time.monotonic()
            mirror.stop(30)   # (the final push, then the claim's bounded wait)
            took = time.monotonic() - took
            assert took < 10, took
            # The claim's thread ends, its held request's connection closed: not the
            # socket's timeout (the hold is 60 s; the bound here is 10 s).
            _until(lambda: not set(_claim_threads()) - before, "the claim's thread lives on",
                   bound=10)
            _until(lambda: emulator.hung_up(asked.connection),
                   "the held request's connection is still open", bound=10)
        assert asked.status == 0   # (never answered: cut, not waited out)
        # Cut on purpose: no "stopped (dedupe may merge …)" warning for it.
        assert [r.getMessage() for r in caplog.records
                if r.name == "drivestage.mirror_claim" and r.levelno >= logging.WARNING] == []
        assert live(emulator)["runs/exp/n.txt"] == [_md5(b"n" * 100)]   # (the final push)
    finally:
        _let_go(emulator)
        mirror.stop(30)
    # Nothing of the claim left on DEST: it was cut before it wrote.
    assert emulator.wait_idle(10)
    assert _mirror_props(emulator) == [] and emulator.properties_of(dest) == []
