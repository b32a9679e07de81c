"""A push's *guard*: the caller's check, made at each point where the push commits on the store.

A push plans against a listing and then writes for minutes. A caller that may lose its right
to write meanwhile (a trainer whose run's lease another trainer took over while this machine
slept: :mod:`trainer.lease`) gives :func:`drivestage.upload_tree.push` a ``guard``: a callable
that returns where the caller may still write, and raises where it may not. The push calls it
(:class:`Fence`) at every commit point:

- before each upload (an update in place is its commit; a new copy costs its bytes), and
  between the chunks of an update in place (its last chunk commits it: a checkpoint of many
  chunks is sent for minutes, :meth:`Fence.between`);
- after each new copy is uploaded and verified, before it counts as sent: a copy made beside
  the old ones is *this push's own* until the sidecar that vouches for it is written (a file
  without a sidecar: until that check passes). A copy the store answered with but of which
  the push sent no byte (a listing that lagged: the file an earlier push made, which its
  sidecar may vouch for) is checked, never its own;
- a checkpoint sent once more (:mod:`drivestage.push_resend`) as its first send: before it
  starts, between its chunks into a copy updated in place, and a new copy checked once sent
  and this push's own in the first copy's place (:meth:`Fence.resent`);
- before a sidecar is written (each upload is checked before);
- before each removal: of old copies, retention's deletions, the room made for the uploads,
  ``--delete``, a first-seen mark cleared; one check per request that removes (an item's, or
  on Drive a batch of up to 100 deletes: ``RemoteStore.delete_many``'s ``check``), so a
  guard that starts refusing in the middle of a loop stops it there (removalfence39); a
  request sent again (its try failed: a 503, a cut connection) is checked again first
  (guards40: a lease lost between a try and its retry removed all the same).

A guard may be unsure (:class:`~drivestage.errors.GuardUnsureError`: a trainer whose run's
lease is not taken yet, Drive silent when it tried): then a new file that replaces nothing
goes (its upload, its check once made), and the first removal or update in place stops the
push with that error, as a refusal does (guards40: the request after such a try went, in a
folder another trainer may hold). A guard that raises once is raised again at every later
point without being called (the push stops). The push then removes what is its own (the new copies no sidecar has vouched
for yet, :meth:`Fence.undo`), keeps everything else as it is (old copies stay, nothing more is
replaced) and raises the guard's error. What no guard can close: a caller asleep between a
check that passed and the request it allowed (Drive has no conditional write) — one
request's span, at every commit point.

The guard is called from the push's upload threads at once: it must be thread-safe, and it
is called often (several times per file), so it must be cheap (the trainer's lease makes no
request while its last renewal proves the lease still its own).
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable, Optional

from drivestage.errors import DriveStageError, GuardUnsureError, NotFoundError
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger("drivestage.upload_tree")

#: The caller's check: returns where the push may still write, raises where it may not.
Guard = Callable[[], None]
#: (folder relative to DEST, name)
Key = tuple[str, str]


class Fence:
    """One push's guard (``None``: no guard, every check passes) and the copies it made that
    are its own until committed."""

    def __init__(self, guard: Optional[Guard] = None) -> None:
        self._guard = guard
        self.broken: Optional[Exception] = None   # the guard's error, once it raised
        self._own: dict[Key, RemoteEntry] = {}    # new copies not yet vouched for
        self._lock = threading.Lock()
        self.checks = 0   # calls of the guard (a test counts them)

    def check(self, replaces: bool = True) -> None:
        """Call the guard; raise its error (again, without calling it, once it raised).
        ``replaces`` False: the commit of a new file that replaces nothing, which an unsure
        guard lets go (:class:`~drivestage.errors.GuardUnsureError`)."""
        if self._guard is None:
            return
        if self.broken is not None:
            raise self.broken
        with self._lock:
            self.checks += 1
        try:
            self._guard()
        except GuardUnsureError as exc:
            if not replaces:
                return
            with self._lock:
                self.broken = self.broken or exc
            raise
        except Exception as exc:
            with self._lock:
                self.broken = self.broken or exc
            raise

    def between(self, kept: int, size: int) -> None:
        """An update in place (committed by its last chunk) has ``kept`` of its ``size`` bytes
        on the store: checked between its chunks, never after the last (the copy is there
        then; its error would undo nothing, and a sidecar's read as not sent: attackfence37)."""
        if kept < size:
            self.check()

    def made(self, key: Key, entry: RemoteEntry, final: bool, own: bool = True) -> None:
        """``entry``, a new copy of ``key`` just uploaded and verified, is this push's own
        until committed; checked now. ``final``: nothing vouches for it but itself (no
        sidecar of it is pushed, or it is a sidecar): committed once the check passes.
        ``own`` False: the store answered with a copy an earlier push made (no byte of it
        sent now: a listing that lagged planned a create of a file already there, answered
        with the file this process made a moment ago or an earlier create's id): that push's
        sidecar may vouch for it, so it is never this push's to remove (attackfence37)."""
        if self._guard is None:
            return
        with self._lock:
            if own:
                self._own[key] = entry
        self.check(replaces=False)   # (made beside the old copies: replaces nothing yet)
        if final:
            self.committed([key])

    def resent(self, key: Key, entry: RemoteEntry, own: bool = True) -> None:
        """``entry``, a new copy of ``key`` sent again (the copy first made went from the
        store before its sidecar: another runtime's ``push --delete``): in that copy's place
        as this push's own while that was its own still (no sidecar vouches for it yet), and
        checked now, as :meth:`made` checks a first copy: a guard refusing then stops the
        push before the sidecar vouches for it, and the copy is removed (resendfence39)."""
        if self._guard is None:
            return
        with self._lock:
            if own and key in self._own:
                self._own[key] = entry
        self.check(replaces=False)

    def committed(self, keys: Iterable[Key]) -> None:
        """The copies of ``keys`` are vouched for on the store now (their sidecar went): no
        longer this push's to remove."""
        with self._lock:
            for key in keys:
                self._own.pop(key, None)

    def undo(self, store: RemoteStore) -> None:
        """Remove the copies this push made that nothing vouches for yet (the guard raised):
        they are its own, and the store goes on as the one allowed to write there left it."""
        with self._lock:
            own, self._own = list(self._own.values()), {}
        for entry in own:
            try:
                store.delete(entry)
            except NotFoundError:
                pass
            except DriveStageError as exc:   # (left: a copy no sidecar vouches for)
                log.warning("could not remove %s, which this push sent before it had to stop "
                            "(%s): a copy no sidecar vouches for is left beside the others",
                            store.describe(entry), exc)
            else:
                log.info("removed %s: this push sent it, and had to stop before its sidecar",
                         store.describe(entry))
