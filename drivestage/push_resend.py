"""A push's re-sends (:class:`Resends`, a mixin of :class:`drivestage.push_job.PushJob`;
split from push_job.py at its line cap): a checkpoint this push sent, sent once more as it
is now. Gone from the store before its sidecar (another runtime's ``push --delete``):
:meth:`Resends._send_gone_again`; replaced in place by the store and saved again meanwhile
(:meth:`drivestage.old_copies.OldCopies.sidecar_source`): into that copy. Guarded as the
first send is (:mod:`drivestage.push_fence`)."""
from __future__ import annotations

import logging
import os
import threading
from typing import Iterable, Optional

from drivestage.errors import NotFoundError, RemoteError
from drivestage.old_copies import Key, OldCopies
from drivestage.push_fence import Fence
from drivestage.state import Md5Cache
from drivestage.store import ProgressFn, RemoteEntry, RemoteStore

# The name its lines always had (a user's logging config, or grep, may name it).
log = logging.getLogger("drivestage.upload_tree")


class Resends:
    """A push's re-sends; the push supplies what they read."""

    store: RemoteStore
    copies: OldCopies
    fence: Fence
    remote_folder: dict[str, RemoteEntry]
    chunk_size: Optional[int]
    cache: Md5Cache
    mutex: threading.Lock

    def _send_gone_again(self, mine: Iterable[Key], count: ProgressFn, *,
                         before: bool = False) -> None:
        """After a sidecar is verified on the store (``before``: before it is sent): the
        copies of its checkpoints ``mine`` this push sent are still there (one files.get
        each); one gone meanwhile is sent again. Another runtime's ``push --delete`` removed a
        checkpoint sent a moment before its sidecar (no sidecar yet: not verified, not
        spared), and the push ended with a sidecar naming bytes that were gone, until the next
        push. A deletion after this look still does so: Drive has no conditional upload. One
        gone again (a server that answers 200 and keeps nothing) fails the push; looked for
        ``before``, its sidecar is not sent, and the verified pair before it stays
        (attacksync35: the sidecar went, and named bytes Drive never kept)."""
        for ck in sorted(mine):
            sent = self.copies.sent.get(ck)
            if sent is None or self._there(sent):
                continue
            shown = "/".join(n for n in ck if n)
            log.warning("%s went from the store after it was sent, before its sidecar %s "
                        "(another push --delete?); sending it again", shown,
                        "was sent" if before else "arrived")
            again = self._send_again(ck, count)
            if not self._there(again):
                raise RemoteError(
                    f"{self.store.describe(again)} was answered as stored and then not held, "
                    "twice (a server or proxy that does not keep what it answers for, or "
                    "another client deleting it): " + ("its sidecar was not sent, and the checkpoint it replaces "
                               "stays" if before else "its sidecar names bytes the store does "
                               "not hold") + "; run the push again once that is fixed")
            if again.md5 != sent.md5:  # changed here since: the next push sends both again
                log.warning("%s changed since its sidecar was sent; the next push sends them",
                            again.name)

    def _there(self, entry: RemoteEntry) -> bool:
        """Whether ``entry`` is on the store (not trashed), as it says now."""
        try:
            self.store.stat(entry)
            return True
        except NotFoundError:   # (trashed too)
            return False

    def _send_again(self, ck: Key, count: ProgressFn,
                    replace: Optional[RemoteEntry] = None) -> RemoteEntry:
        """The checkpoint ``ck`` this push sent, sent once more as it is now (``replace``:
        into that copy, where the store replaced it in place: never a copy beside it).
        Guarded as its first send was: before it starts; into the copy in place, between its
        chunks (its last chunk commits it: :meth:`~drivestage.push_fence.Fence.between`, so
        a guard refusing meanwhile leaves that copy's bytes as they were); a new copy, once
        sent (:meth:`~drivestage.push_fence.Fence.resent`: this push's own, in the first
        copy's place, while no sidecar vouches for it)."""
        self.fence.check(replaces=replace is not None)
        path = self.copies.local[ck]
        # (as the first send's chunks count against its size; never a link's: its upload
        # refuses one)
        size = os.stat(path, follow_symlinks=False).st_size
        moved = [0]

        def progress(n: int) -> None:
            moved[0] += n
            count(n)
            if replace is not None:
                self.fence.between(moved[0], size)

        again = self.store.upload(path, self.remote_folder[ck[0]], ck[1], replace=replace,
                                  chunk_size=self.chunk_size, progress=progress,
                                  md5_cache=self.cache,   # (never through a link)
                                  real=self.copies.real.get(path, ""))
        if replace is None:   # (none sent: a copy an earlier push made, never its own)
            self.fence.resent(ck, again, own=moved[0] > 0)
        with self.mutex:
            self.copies.sent[ck] = again
        return again
