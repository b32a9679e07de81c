"""fidelity27: ranged reads keep their connection.

Drive is reached over TLS: a new connection costs a TCP and a TLS handshake (two or three
round trips) on top of the 0.1-0.3 s Drive takes to answer each request. drivestage's
streaming reader meant to keep its keep-alive connection once an answer's body was read to
its end, but http.client marks a body with a length as read only on a read past its end:
every ranged read (each sidecar a push or prune reads, each stream segment, each redirect)
opened a connection of its own. The emulator now says which connection carried each request
(``RequestRecord.connection``).
"""
from __future__ import annotations

import os

from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect


def _connections(emulator, kind: str = "media.download") -> list[int]:
    return [r.connection for r in emulator.requests if r.kind == kind or
            (kind == "media.download" and r.path.startswith("/download/"))]


def test_ranged_reads_share_one_connection(emulator, env):
    data = os.urandom(4 << 20)
    emulator.add_file("A/x.bin", data)
    store = connect(api_root=emulator.url, token="test-token")
    entry = store.resolve("A/x.bin")
    emulator.clear_requests()
    got = b"".join(store.fetch_range(entry, i << 20, (i + 1) << 20) for i in range(4))
    assert got == data
    used = _connections(emulator)
    assert len(used) == 4 and len(set(used)) == 1, used


def test_a_redirected_read_and_the_next_share_the_connection(emulator, env):
    data = os.urandom(2 << 20)
    emulator.add_file("A/x.bin", data)
    emulator.faults.redirect_media(307)
    store = connect(api_root=emulator.url, token="test-token")
    entry = store.resolve("A/x.bin")
    emulator.clear_requests()
    got = b"".join(store.fetch_range(entry, i << 20, (i + 1) << 20) for i in range(2))
    assert got == data
    used = _connections(emulator)
    # API, signed link, signed link again (reused since fidelity28): one connection.
    assert len(used) == 3 and len(set(used)) == 1, used


def test_an_error_answer_leaves_the_connection_usable(emulator, env):
    """A 503 (its JSON body read) and the retry that follows it: one connection."""
    data = os.urandom(1 << 20)
    emulator.add_file("A/x.bin", data)
    store = connect(api_root=emulator.url, token="test-token")
    entry = store.resolve("A/x.bin")
    emulator.clear_requests()
    emulator.faults.inject("GET", r"alt=media", status=503)
    assert store.fetch_range(entry, 0, 1 << 20) == data
    used = _connections(emulator)
    assert [r.status for r in emulator.requests if r.kind == "media.download"] == [503, 206]
    assert len(set(used)) == 1, used


def test_a_connection_the_server_closed_while_idle_is_opened_again_at_once(emulator, env,
                                                                          caplog):
    """A kept connection the server closed meanwhile (Drive closes idle ones; here the
    emulator restarts on its port) costs no failed attempt, no backoff, no warning."""
    import logging

    data = os.urandom(1 << 20)
    emulator.add_file("A/x.bin", data)
    store = connect(api_root=emulator.url, token="test-token")
    entry = store.resolve("A/x.bin")
    assert store.fetch_range(entry, 0, 1 << 10) == data[:1 << 10]
    emulator.stop()             # closes every open connection
    emulator.start()            # the same port and data
    emulator.clear_requests()
    with caplog.at_level(logging.INFO, logger="drivestage"):
        assert store.fetch_range(entry, 0, 1 << 20) == data
    assert [r.status for r in emulator.requests if r.kind == "media.download"] == [206]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING
                or "retry" in r.getMessage().lower()], caplog.text
