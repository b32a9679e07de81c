"""Name lookups a Ctrl-C and the HTTP timeout can end: one thread per host under way.

``socket.getaddrinfo`` waits in C, where nothing cuts it, and without an end of its own
where the resolver does not answer (a stuck NSS module, a VPN's DNS gone): a connection's
lookup, run in the thread that made the connection (``interrupts.beside``), held the request
for good, and each request interrupted meanwhile (a notebook's Ctrl-C, a mirror abandoned)
left one more thread waiting there. A lookup of a host is now shared by every caller that
asks for it while it is under way (one thread however many give up on it), and each caller
waits for it ``timeout`` seconds at most (``socket.timeout``, retried as a lost
connection), in short waits (:data:`drivestage.interrupts.SLICE`) where it waits in pieces.
Nothing is kept once the lookup ends: the next connection looks the name up again.

A lookup that never ends is given up on once it has been under way :data:`STUCK_AFTER`
times the caller's timeout: its thread is left waiting (a daemon, nothing of ours in it),
counted apart, and the next caller begins a new lookup. Kept, it held its host (and, 16 of
them, every new host) for the process's life: a ``mirror`` of days whose resolver hung once
for Drive's host never reached it again, though the resolver answered new queries a minute
later. Each one given up on and still waiting doubles the wait before the next is (a
resolver that hangs for good costs a thread per doubling, not one per 4 timeouts), and they
are :data:`MAX_GIVEN_UP` at most, with a warning each.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Optional

from drivestage import interrupts

#: One address of a host, as ``socket.getaddrinfo`` gives it.
Address = tuple[Any, ...]


class _Lookup:
    """One name lookup under way, and its outcome once it ended."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.ended = interrupts.Flag()
        self.addresses: list[Address] = []
        self.error: Optional[BaseException] = None


class LookupTimeout(socket.timeout):
    """A name lookup not done within the HTTP timeout (retried as a lost connection)."""


#: The most lookups under way at once: where none of them ends (the resolver does not
#: answer), a new host is not looked up (:class:`LookupTimeout` at once), so the threads
#: stuck in the resolver stay this few however many hosts are asked for (a download's
#: signed hosts vary from file to file).
MAX_UNDER_WAY = 16

#: A lookup under way this many times a caller's timeout is taken as one that never ends
#: (a resolver's own retries end within a few of its timeouts, 5 s each by default): it is
#: given up on (see the module doc); twice as many times for each given up on that still
#: waits.
STUCK_AFTER = 4

#: The most threads left waiting in lookups given up on: past it none is given up on, and a
#: host whose lookup hangs fails at once, as all did before (the process must be restarted).
MAX_GIVEN_UP = 48

_UNDER_WAY: dict[tuple[str, int], _Lookup] = {}
_GIVEN_UP: set[_Lookup] = set()
_LOCK = threading.Lock()
log = logging.getLogger(__name__)


def _forget_in_child() -> None:
    """A forked child has none of its parent's lookup threads: a lookup under way as it
    forked (a mirror's, while the trainer's data loader forked its workers) would be waited
    for there until the timeout, each time, and ``_LOCK`` may have been held."""
    global _LOCK
    _UNDER_WAY.clear()
    _GIVEN_UP.clear()
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _numeric(host: str, port: int) -> Optional[list[Address]]:
    """The address of ``host`` when it is one (an IP address: no lookup, nothing to wait
    for), else None."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)


def _run(key: tuple[str, int], lookup: _Lookup) -> None:
    try:
        lookup.addresses = socket.getaddrinfo(key[0], key[1], 0, socket.SOCK_STREAM)
    except BaseException as exc:   # handed to every caller waiting
        lookup.error = exc
    finally:
        with _LOCK:
            if _UNDER_WAY.get(key) is lookup:
                del _UNDER_WAY[key]
            _GIVEN_UP.discard(lookup)
        lookup.ended.set()


def under_way() -> int:
    """How many lookups are under way (threads waiting for a resolver), those given up on
    not counted."""
    with _LOCK:
        return len(_UNDER_WAY)


def given_up() -> int:
    """How many lookups given up on still hold a thread (see :data:`STUCK_AFTER`)."""
    with _LOCK:
        return len(_GIVEN_UP)


def _give_up_stuck(keys: list[tuple[str, int]], timeout: Optional[float]) -> Optional[str]:
    """Give up on the oldest lookup of ``keys`` if it has been under way :data:`STUCK_AFTER`
    times ``timeout`` (None: none is), doubled for each given up on still waiting, and
    fewer than :data:`MAX_GIVEN_UP` are; the warning to log then (``_LOCK`` held: logged
    by the caller once it is released), else None."""
    if timeout is None or len(_GIVEN_UP) >= MAX_GIVEN_UP:
        return None
    now = time.monotonic()
    old = [(_UNDER_WAY[key].began, key) for key in keys if key in _UNDER_WAY]
    if not old or now - min(old)[0] < STUCK_AFTER * timeout * 2 ** len(_GIVEN_UP):
        return None
    began, key = min(old)
    _GIVEN_UP.add(_UNDER_WAY.pop(key))
    return (f"the name lookup of {key[0]} has not ended in {now - began:.0f} s; given up on "
            f"({len(_GIVEN_UP)} given up on still wait in the resolver; at {MAX_GIVEN_UP}, "
            "new hosts fail until the process is restarted)")


def _shared(key: tuple[str, int], timeout: Optional[float],
            said: list[Optional[str]]) -> _Lookup:
    """The lookup of ``key`` under way, begun now if none is (lookups given up on, their
    warnings added to ``said``); ``_LOCK`` held."""
    said.append(_give_up_stuck([key], timeout))   # (then looked up again, below)
    if key not in _UNDER_WAY and len(_UNDER_WAY) >= MAX_UNDER_WAY:
        said.append(_give_up_stuck(list(_UNDER_WAY), timeout))   # (room for this one)
    lookup = _UNDER_WAY.get(key)
    if lookup is not None:
        return lookup
    if len(_UNDER_WAY) >= MAX_UNDER_WAY:
        stuck = f"; {len(_GIVEN_UP)} more never ended" if _GIVEN_UP else ""
        raise LookupTimeout(f"the name lookup of {key[0]} was not begun: {MAX_UNDER_WAY} "
                            f"others are under way and none has ended{stuck} (the resolver "
                            "does not answer)")
    fresh = _Lookup()
    thread = interrupts.BackgroundThread(lambda: _run(key, fresh), "drivestage-lookup")
    try:
        thread.start()   # (a Ctrl-C meanwhile is raised once it runs)
    finally:
        # Listed once it runs, never before: a lookup listed and never started would be
        # waited for by every later caller. Its end waits for _LOCK, so it is listed before
        # it can leave the list.
        if thread.thread.ident is not None:
            _UNDER_WAY[key] = fresh
    return fresh


def addresses(host: str, port: int, timeout: Optional[float],
              between: Callable[[], None] = lambda: None) -> list[Address]:
    """``socket.getaddrinfo(host, port, 0, SOCK_STREAM)``, waited for ``timeout`` seconds at
    most (None: no end; :class:`LookupTimeout` after it), ``between()`` called between the short
    waits (a thread's stop: ``pool.check``); a lookup of the same host and port already
    under way is waited for instead of another (see the module doc)."""
    numeric = _numeric(host, port)
    if numeric is not None:
        return numeric
    key = (host, port)
    said: list[Optional[str]] = []
    try:
        with _LOCK:
            lookup = _shared(key, timeout, said)
    finally:
        for line in said:   # (logged with _LOCK released: a handler may look a name up)
            if line is not None:
                log.warning("%s", line)
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        left = interrupts.SLICE if end is None else min(interrupts.SLICE,
                                                        end - time.monotonic())
        if left <= 0 and not lookup.ended.is_set():
            raise LookupTimeout(f"the name lookup of {host} took more than {timeout:g} s "
                                "(DRIVESTAGE_HTTP_TIMEOUT)")
        if lookup.ended.wait(max(left, 0)):
            break
        between()
    error = lookup.error
    if isinstance(error, OSError):   # (a copy each: callers in several threads raise it)
        raise type(error)(*error.args)
    if error is not None:
        raise error
    return list(lookup.addresses)
