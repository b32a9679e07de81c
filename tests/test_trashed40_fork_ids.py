"""trashed40: the locks of drive/ids.py and drive/removal.py after a fork (edges40's note).
A thread of the parent that held one as the process forked (an IdPool asking Drive for ids
under retries: minutes) is not in the child, whose first create then waited for that lock
forever; and the ids the parent's pool held were the child's too, so both processes could
send a create naming one id. The child asks Drive for ids of its own.

The parent's generateIds answer is held by a proxy until the test lets it go; the child
reports through a pipe read with a bound (tests/test_attacksvc39_fork.py)."""
from __future__ import annotations

import threading

import pytest

from _proxy import Reply
from drivestage.drive import connect, removal
from test_attacksvc39_fork import _forked


def test_a_child_forked_while_the_parent_asked_for_ids_asks_for_its_own(emulator, env,
                                                                       proxy):
    store = connect(api_root=proxy.url, token="t")
    pool = store.creates.pool
    first = pool.take_one()
    assert first is not None
    held, go = threading.Event(), threading.Event()

    def hold(status: int, headers: dict, body: bytes) -> Reply:
        held.set()
        go.wait(10)
        return Reply(status, headers, [body])

    proxy.on("GET", r"generateIds", hold, times=1)
    parents: list[str] = []
    asking = threading.Thread(target=lambda: parents.extend(pool.take(40)))
    try:
        asking.start()
        assert held.wait(10)   # the parent's thread holds the pool's lock, its answer held

        def child() -> None:
            mine = pool.take_one()
            assert mine is not None and mine != first
            assert mine not in parents_before, "the parent's id"

        parents_before = set(pool._ids)   # (what the pool held as it forked)
        assert len(parents_before) == 15
        assert _forked(child, bound_s=5)() == "ok"
    finally:
        go.set()
        asking.join(10)
    assert not asking.is_alive()
    assert len(parents) == 40 and parents_before <= set(parents)


def test_a_child_forked_while_a_thread_held_the_warned_lock_warns(env):
    lock = removal._TRASH_WARNED_LOCK
    taken, go = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            go.wait(10)

    holder = threading.Thread(target=hold)
    try:
        holder.start()
        assert taken.wait(10)

        def child() -> None:
            removal.warn_trashed_instead("drive-x", "drive:a", PermissionError("no"), "x")

        assert _forked(child, bound_s=5)() == "ok"
    finally:
        go.set()
        holder.join(10)
