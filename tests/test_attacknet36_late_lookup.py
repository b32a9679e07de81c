"""A name lookup net36 gave up on (under way 4 times the HTTP timeout) that answers later,
with another address than the fresh lookup got: its answer is not used by a later caller
(nothing is kept once a lookup ends), its thread is no longer counted once it ends (no
leak toward the cap of 48), and the host is looked up afresh each time (attacknet36: held
up; a guard)."""
from __future__ import annotations

import socket
import threading
import time

import pytest

HOST = "late.hung.test"


def test_a_lookup_given_up_on_that_answers_late_is_neither_used_nor_counted(monkeypatch):
    from drivestage.drive import lookups

    real = socket.getaddrinfo
    let_go, hung = threading.Event(), threading.Event()
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != HOST:
            return real(host, port, *args, **kwargs)
        calls.append(host)
        if len(calls) == 1:
            hung.set()
            assert let_go.wait(60)
            return real("127.0.0.2", port, *args, **kwargs)   # the late, other answer
        return real("127.0.0.1", port, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    timeout = 0.05
    before = {t for t in threading.enumerate() if t.name == "drivestage-lookup"}
    try:
        with pytest.raises(lookups.LookupTimeout):
            lookups.addresses(HOST, 443, timeout)
        assert hung.is_set()
        began = time.monotonic()
        while time.monotonic() - began < lookups.STUCK_AFTER * timeout + 0.01:
            time.sleep(lookups.STUCK_AFTER * timeout)   # (the rule's own wait)
        fresh = lookups.addresses(HOST, 443, timeout)
        assert {a[4][0] for a in fresh} == {"127.0.0.1"}
        assert (lookups.given_up(), lookups.under_way()) == (1, 0)
    finally:
        let_go.set()
    for thread in {t for t in threading.enumerate() if t.name == "drivestage-lookup"} - before:
        thread.join(30)
    assert (lookups.given_up(), lookups.under_way()) == (0, 0)
    again = lookups.addresses(HOST, 443, timeout)
    assert {a[4][0] for a in again} == {"127.0.0.1"} and len(calls) == 3
