"""A name lookup that never ends (a stuck NSS module, a VPN's DNS gone for a while) was
waited for by every later connection to its host, and 16 of them kept every new host from
being looked up, for the process's life: a ``mirror`` of days whose resolver hung once
could never reach Drive again, though the resolver answered new queries a minute later.
A lookup under way ``STUCK_AFTER`` times the HTTP timeout is given up on now (its thread
left waiting, counted apart, bounded), and the next caller looks the name up afresh.

The resolver is a hook on ``socket.getaddrinfo`` (as tests/test_conn35_lookups.py): its
first call for a name never answers until the test ends, later calls answer at once (the
resolver "is back"). The only waits are the HTTP timeout's multiples the rule is about.
"""
from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from _leaks import our_threads as _ours

HUNG = "localhost"   # (the emulator answers loopback names only)


class _OnceHungResolver:
    """``getaddrinfo`` whose first call for each name in ``hung`` waits until the test
    ends; every later call answers (``answer`` names the address)."""

    def __init__(self, monkeypatch, answer: str = "127.0.0.1") -> None:
        self.let_go = threading.Event()
        self.hung_at: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            if host != HUNG and not str(host).endswith(".hung.test"):
                return real(host, port, *args, **kwargs)
            self.calls[host] = self.calls.get(host, 0) + 1
            if host not in self.hung_at:
                self.hung_at[host] = time.monotonic()
                assert self.let_go.wait(120), "the resolver was never let go"
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            return real(answer, port, *args, **kwargs)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def wait_until_stuck(self, host: str, timeout: float) -> None:
        """Until ``host``'s hung lookup has been under way STUCK_AFTER times ``timeout``."""
        from drivestage.drive import lookups
        stuck_after = getattr(lookups, "STUCK_AFTER", 4)   # (main had none: fails below)
        end = self.hung_at[host] + stuck_after * timeout + 0.01
        while (left := end - time.monotonic()) > 0:
            time.sleep(left)


@pytest.fixture
def resolver(monkeypatch):
    hung = _OnceHungResolver(monkeypatch)
    threads = _ours()
    yield hung
    hung.let_go.set()
    for thread in _ours() - threads:
        thread.join(30)


def _store(emulator, monkeypatch, timeout: str = "0.3"):
    from drivestage.drive import connect
    port = int(emulator.url.rsplit(":", 1)[1].strip("/"))
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", timeout)
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    return connect(api_root=f"http://{HUNG}:{port}/", token="test-token")


def test_a_host_whose_lookup_hung_once_is_reached_once_the_resolver_is_back(
        emulator, local_state, monkeypatch, resolver, caplog):
    """One host (Drive's, the only one a mirror talks to): every request after the hang
    waited for the same lookup and failed, for good."""
    from drivestage.drive import lookups
    from drivestage.errors import RemoteError

    emulator.add_file("data/a.txt", b"hello")
    store = _store(emulator, monkeypatch)
    with pytest.raises(RemoteError, match=f"the name lookup of {HUNG} took more than 0.3 s"):
        store.resolve("data/a.txt")
    assert resolver.calls[HUNG] == 1
    resolver.wait_until_stuck(HUNG, 0.3)
    with caplog.at_level(logging.WARNING, logger="drivestage.drive.lookups"):
        assert store.resolve("data/a.txt").size == 5
    assert resolver.calls[HUNG] == 2, "the name was not looked up again"
    assert lookups.given_up() == 1 and lookups.under_way() == 0
    warned = [r.getMessage() for r in caplog.records if r.name == "drivestage.drive.lookups"]
    assert len(warned) == 1 and warned[0].startswith(
        f"the name lookup of {HUNG} has not ended in 1 s; given up on (1 given up on still "
        "wait in the resolver; at 48, new hosts fail until the process is restarted)"), warned
    # The thread given up on, once its resolver call ends, leaves no count behind.
    resolver.let_go.set()
    for thread in _ours():
        if thread.name == "drivestage-lookup":
            thread.join(30)
    assert lookups.given_up() == 0


def test_sixteen_hung_lookups_no_longer_keep_a_new_host_out_for_good(
        emulator, local_state, monkeypatch, resolver):
    """16 lookups of other hosts (a download's signed hosts) never end: a new host failed
    at once ("16 others are under way"), for the process's life."""
    from drivestage.drive import lookups
    from drivestage.errors import RemoteError

    emulator.add_file("data/a.txt", b"hello")
    for i in range(lookups.MAX_UNDER_WAY):
        with pytest.raises(lookups.LookupTimeout, match="took more than"):
            lookups.addresses(f"h{i}.hung.test", 443, 0.01)
    store = _store(emulator, monkeypatch)
    resolver.hung_at[HUNG] = 0.0   # (its own lookups answer: the resolver is back)
    with pytest.raises(RemoteError, match="16 others are under way and none has ended"):
        store.resolve("data/a.txt")
    resolver.wait_until_stuck(f"h{lookups.MAX_UNDER_WAY - 1}.hung.test", 0.3)
    assert store.resolve("data/a.txt").size == 5
    # One given up on, the oldest, to make room: the others wait on, counted.
    assert lookups.given_up() == 1
    assert lookups.under_way() == lookups.MAX_UNDER_WAY - 1


def test_lookups_given_up_on_back_off_and_are_bounded(monkeypatch, resolver):
    """Given up on, a thread still waits in the resolver: each such doubles the wait before
    the next is given up on (a resolver hung for good costs a thread per doubling), and
    past MAX_GIVEN_UP none is: a new host fails at once, saying so."""
    from drivestage.drive import lookups

    monkeypatch.setattr(lookups, "MAX_GIVEN_UP", 2)
    threads, timeout = _ours(), 0.25
    for i in range(lookups.MAX_UNDER_WAY):   # (at once: the table full)
        with pytest.raises(lookups.LookupTimeout, match="took more than"):
            lookups.addresses(f"h{i}.hung.test", 443, 0.01)
    resolver.wait_until_stuck("h0.hung.test", timeout)
    with pytest.raises(lookups.LookupTimeout, match="n0.hung.test took more than"):
        lookups.addresses("n0.hung.test", 443, timeout)   # (h0 given up on: begun)
    assert lookups.given_up() == 1
    # h1 is as stuck as h0 was, but one given up on still waits: twice as long now.
    with pytest.raises(lookups.LookupTimeout,
                       match="16 others are under way and none has ended; 1 more never"):
        lookups.addresses("n1.hung.test", 443, timeout)
    resolver.wait_until_stuck("h1.hung.test", 2 * timeout)
    with pytest.raises(lookups.LookupTimeout, match="n1.hung.test took more than"):
        lookups.addresses("n1.hung.test", 443, timeout)
    assert lookups.given_up() == 2
    resolver.wait_until_stuck("h2.hung.test", 4 * timeout)
    with pytest.raises(lookups.LookupTimeout,
                       match="16 others are under way and none has ended; 2 more never"):
        lookups.addresses("n2.hung.test", 443, timeout)
    assert lookups.given_up() == 2 and lookups.under_way() == lookups.MAX_UNDER_WAY
    assert len(_ours() - threads) == 2 + lookups.MAX_UNDER_WAY
