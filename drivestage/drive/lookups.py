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
"""
from __future__ import annotations

import ipaddress
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

_UNDER_WAY: dict[tuple[str, int], _Lookup] = {}
_LOCK = threading.Lock()


def _forget_in_child() -> None:
    """A forked child has none of its parent's lookup threads: a lookup under way as it
    forked (a mirror's, while the trainer's data loader forked its workers) would be waited
    for there until the timeout, each time, and ``_LOCK`` may have been held."""
    global _LOCK
    _UNDER_WAY.clear()
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
        lookup.ended.set()


def under_way() -> int:
    """How many lookups are under way (threads waiting for a resolver)."""
    with _LOCK:
        return len(_UNDER_WAY)


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
    with _LOCK:
        lookup = _UNDER_WAY.get(key)
        if lookup is None and len(_UNDER_WAY) >= MAX_UNDER_WAY:
            raise LookupTimeout(f"the name lookup of {host} was not begun: {MAX_UNDER_WAY} "
                                "others are under way and none has ended (the resolver does "
                                "not answer)")
        if lookup is None:
            fresh = lookup = _Lookup()
            thread = interrupts.BackgroundThread(lambda: _run(key, fresh), "drivestage-lookup")
            try:
                thread.start()   # (a Ctrl-C meanwhile is raised once it runs)
            finally:
                # Listed once it runs, never before: a lookup listed and never started
                # would be waited for by every later caller. Its end waits for _LOCK, so
                # it is listed before it can leave the list.
                if thread.thread.ident is not None:
                    _UNDER_WAY[key] = fresh
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
