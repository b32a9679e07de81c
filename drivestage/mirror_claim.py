"""A running mirror's claim on its destination folder, so that ``drivestage dedupe`` beside
it refuses to merge under it (leasefull42).

A training run holds its folder by a lease claim that dedupe reads (:mod:`drivestage.
run_claims`); a plain ``drivestage mirror`` held nothing: dedupe moved what the newer of two
same-named folders held into the oldest and trashed the newer one, while the mirror kept
pushing into it by id (into the trash) or into a folder being emptied. A mirror whose
destination is on Drive now holds a PUBLIC property ``drivestage-mirror-<token>`` of that
folder (the one its push writes into: of twins, the oldest) while its thread runs: the value
a trainer's property claim has (generation 1, the times, pid, pid namespace, released,
``stale_s``, host: :func:`run_claims.property_value`), renewed every :data:`PERIOD_S`, and
removed when the mirror's thread ends. It is advisory: a claim Drive refuses (down, or a
full Drive that refuses property writes) is logged, and the mirror pushes as before. Only
``dedupe`` reads it; a trainer reads ``trainer-lease-`` claims only, so a mirror and a
trainer of one folder do not stop each other (as before).

**Its requests run in a thread of its own** (mirrorclaim43): the lookup of DEST, the sweep
of gone mirrors' claims, the writes, the renewals, the move to a folder the push made anew,
and the removal. They ran on the mirror's push thread, inside its periods, each with the
retries: a properties endpoint slow, rate-limited or hanging delayed every period's push
and, worse, ``stop()``'s final flush (the push that saves the last checkpoint before a VM
vanishes). The push thread now only tells the claim where the push wrote (no request:
:meth:`MirrorClaim.point`), and the mirror's end waits for the removal at most
:data:`RELEASE_WAIT_S`. The window this leaves: where DEST is there before the first push,
the claim lands once its thread has looked DEST up and written it (a few requests, while
the first push lists and uploads), not before that push's first write; a ``dedupe`` run by
hand in that window merges as it did before leasefull42. Acceptable: dedupe is a manual
command, run once by a person, and the claim then holds for the mirror's whole life, where
the old order paid its requests in every push's time. Where the push makes DEST, it is
claimed once the push says where (right after it, as before). The claim thread looks
things up with a store of its own (:meth:`~drivestage.drive.store.DriveStore.apart`: the
same connection and account, caches of its own): the push's store keeps caches of folders
and listings (``resolve`` learns ids, a listing notes what went) that a second thread's
lookup would change under the push.

Why a claim and not "dedupe refuses folders with recent writes": a mirror whose files did
not change writes nothing for hours, and a user's own push a minute ago would read as
another writer; the claim says exactly who writes there now, and dedupe judges it by the
rule it judges a trainer's by (:func:`run_claims.gone`: a mirror killed elsewhere holds
nothing after its ``stale_s``, one of this machine that ended holds nothing at once).
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from typing import Optional, Protocol, Union

from drivestage import pool, run_claims
from drivestage.errors import DriveStageError
from drivestage.interrupts import Flag
from drivestage.paths import StorePath
from drivestage.store import RemoteEntry, RemoteStore
from drivestage.temps import namespace_tag

log = logging.getLogger(__name__)

#: How often the claim is renewed (its ``stale_s``: :func:`run_claims.stale_after`, 150 s).
PERIOD_S = 60.0
#: Longest wait of a mirror's end for its claim's removal (the final push is done by then:
#: no checkpoint waits on it). A healthy Drive answers the one ``properties.delete`` (and a
#: renewal under way before it) in a fraction of a second: 2 s is that with room, and little
#: of the 30 s a VM gives after its SIGTERM; a Drive that does not answer in that time is
#: failing, and its retries would take minutes. A claim left by a removal not done in time
#: holds nothing once this process has ended (:func:`run_claims.gone`: at once on this
#: machine, after its ``stale_s`` seen from another), and the next mirror there sweeps it.
RELEASE_WAIT_S = 2.0
_MAX_BYTES = 124   # (Drive's, for a property's key and value together)
_MAX_SWEPT = 100   # (Drive keeps 30 PUBLIC properties a file: a bound, never reached)


class ClaimStore(Protocol):
    """What a claim asks of its store (a Drive store's: one that keeps properties)."""

    def resolve(self, path: Union[str, StorePath]) -> RemoteEntry: ...
    def public_properties(self, entry: RemoteEntry) -> dict[str, str]: ...
    def set_public_property(self, entry: RemoteEntry, key: str,
                            value: Optional[str]) -> None: ...
    def clock(self) -> tuple[float, float]: ...


class MirrorClaim:
    """The claim of one mirror on the folder at ``path`` of ``store`` (the thread's own:
    :meth:`~drivestage.drive.store_folders.FolderMaking.apart`), held by a thread of its
    own from :meth:`start` to :meth:`release`; :meth:`point` says where the push wrote."""

    def __init__(self, store: ClaimStore, path: StorePath,
                 period_s: float = PERIOD_S) -> None:
        self.store, self.path, self.period_s = store, path, period_s
        self.name = path.names[-1] if path.names else ""
        self.key = f"{run_claims.MIRROR_PREFIX}{secrets.token_hex(8)}"
        self.folder: Optional[RemoteEntry] = None   # where the claim is written (its thread's)
        self._made: Optional[float] = None
        self._wrote = False   # (a write was sent to self.folder: removed at the end)
        # The folder id the push wrote into last (None: none said yet). Written by the push
        # thread, read by the claim thread: one reference, no lock (none to hold at a fork).
        self._pushed: Optional[str] = None
        self._looked: Optional[str] = None   # (the claim thread's: found at the path)
        self._wake = threading.Event()
        self._done = threading.Event()
        self._ended = threading.Event()   # (its thread's last request is over)
        self._cut = Flag()   # (set: its request under way stops, its connection closed)
        self._thread: Optional[threading.Thread] = None
        self._look = True

    def start(self, known: Optional[str], look: bool = True) -> "MirrorClaim":
        """Start its thread, which claims ``known`` (the folder id the push wrote into), else,
        ``look``, the folder it finds at the path (twins or none: the one the push says,
        :meth:`point`). No request on the caller's thread."""
        self._pushed, self._look = known, look
        thread = threading.Thread(target=self._run, name="drivestage-mirror-claim", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:   # ("can't start new thread": the process is at its limit)
            # Advisory: the push goes on without it, said once (it failed the push period,
            # and every one after: lefts44b). release() has nothing to wait for.
            self._ended.set()
            log.warning("the mirror's claim on %s was not made (%s): dedupe will not see "
                        "this mirror", self.path, exc)
            return self
        self._thread = thread
        return self

    def point(self, known: Optional[str]) -> None:
        """The push wrote into the folder ``known`` (None: said nothing of it): the claim
        moves there where it is another (DEST trashed or moved away, made anew by the push:
        attackmirror42). No request on the caller's thread."""
        if known is not None and known != self._pushed:
            self._pushed = known
            self._wake.set()

    def release(self, wait: Optional[float] = None) -> bool:
        """Stop renewing; its thread removes the claim. Waits ``wait`` seconds at most for
        that (None: :data:`RELEASE_WAIT_S`); returns whether it is over. Not over (Drive
        hanging): its thread is cut at its request under way, whose connection is closed
        (as ``Mirror.abandon`` cuts a push), and ends within a moment; it kept the thread
        and the connection until the socket's timeout and its retries (minutes), after the
        mirror's end. The claim goes stale by itself (see :data:`RELEASE_WAIT_S`)."""
        self._done.set()
        self._wake.set()
        if self._thread is None or self._ended.wait(RELEASE_WAIT_S if wait is None else wait):
            return True
        self._cut.set()
        return False

    # -- its thread
    def _run(self) -> None:
        try:
            with pool.stoppable(self._cut):   # (its waits for Drive in pieces: cut at release)
                self._claim()
        except BaseException as exc:   # (advisory: never a traceback in the host process)
            if self._cut.is_set():
                log.debug("the mirror's claim %s on %s was cut at the mirror's end (Drive did "
                          "not answer within %g s): %r", self.key, self.path, RELEASE_WAIT_S,
                          exc)
            else:
                log.warning("the mirror's claim %s on %s stopped (dedupe may merge under "
                            "this mirror): %r", self.key, self.path, exc)
        finally:
            self._ended.set()

    def _claim(self) -> None:
        """Its thread's work: the lookup, the claim, its renewals and moves, the removal."""
        if self._look and self._pushed is None:
            self._lookup()
        due = 0.0
        while True:
            self._wake.clear()   # (before the read: a word said after it wakes the wait)
            if self._done.is_set():   # (after the clear: a release() just before it
                break                 # slept the period through, attack44)
            want = self._pushed or self._looked   # (the push's word first)
            if want is not None and (self.folder is None or want != self.folder.id):
                self._move(RemoteEntry(want, self.name, True))
                due = time.monotonic() + self.period_s
            elif self.folder is not None and time.monotonic() >= due:
                self._write()
                due = time.monotonic() + self.period_s
            self._wake.wait(None if self.folder is None
                            else max(0.0, due - time.monotonic()))
        if self._wrote:
            self._set(None)

    def _lookup(self) -> None:
        """The folder at the path, where it is there before the first push wrote."""
        try:
            folder = self.store.resolve(self.path)
        except DriveStageError as exc:   # (none yet, or twins: claimed after the push)
            log.debug("no mirror claim on %s yet: %s", self.path, exc)
            return
        if folder.is_dir:
            self._looked = folder.id

    def _move(self, folder: RemoteEntry) -> None:
        """Claim ``folder``: the claim on the one before removed, the claims of mirrors gone
        removed from it (:meth:`_sweep`), then this one written."""
        if self._wrote:
            self._set(None)
        self.folder, self._wrote = folder, False
        self._sweep()
        if not self._done.is_set():   # (released meanwhile: nothing to write)
            self._write()

    def _sweep(self) -> None:
        """Remove the folder's mirror claims whose holder is gone (:func:`run_claims.no_ones`;
        a value that holds no claim is no one's too): a mirror killed (SIGKILL, a Colab
        runtime gone) never removed its own, and Drive keeps 30 PUBLIC properties a file, so
        after 30 such restarts the next claim was refused (dedupe merged under that mirror)
        and so was a trainer's lease property there (attackmirror42). One ``files.get``, and
        a ``properties.delete`` for each removed (at most Drive's 30)."""
        assert self.folder is not None
        try:
            found = self.store.public_properties(self.folder)
            now, later = self.store.clock()
            for key, value in list(found.items())[:_MAX_SWEPT]:
                claim = run_claims.property_claim(value)
                if key.startswith(run_claims.MIRROR_PREFIX) and key != self.key and (
                        claim is None or run_claims.no_ones(
                            claim, now, f"{self.folder.id}#{key}", later)):
                    self.store.set_public_property(self.folder, key, None)
        except DriveStageError as exc:   # (advisory, as the claim is)
            log.debug("could not remove the claims of mirrors gone from the folder %s: %s",
                      self.folder.id, exc)

    def _write(self) -> None:
        from drivestage.drive import server_clock

        now = round(server_clock.now(), 1)
        self._made = now if self._made is None else self._made
        claim = run_claims.PropertyClaim(1, now, self._made, os.getpid(), namespace_tag(),
                                         False, socket.gethostname(),
                                         run_claims.stale_after(self.period_s))
        self._set(run_claims.property_value(claim, _MAX_BYTES - len(self.key.encode())))

    def _set(self, value: Optional[str]) -> None:
        """Write the claim on its folder, or remove it (None); Drive's refusal is logged."""
        assert self.folder is not None
        self._wrote = value is not None
        try:
            self.store.set_public_property(self.folder, self.key, value)
        except DriveStageError as exc:   # (advisory: the mirror pushes as before)
            log.debug("could not %s the mirror's claim %s on the folder %s: %s",
                      "remove" if value is None else "write", self.key, self.folder.id, exc)


def start(store: RemoteStore, path: StorePath, look: bool = True) -> Optional[MirrorClaim]:
    """A claim on the folder at ``path`` of ``store``, its thread started; None where the
    store keeps no properties (a directory, a Drive mount). It claims the folder the push
    wrote into where the store knows it, else (``look``) the one it finds there; no request
    on the caller's thread."""
    from drivestage.drive.store_folders import FolderMaking

    if not isinstance(store, FolderMaking):
        return None
    # (the claim thread's own caches: see the module doc)
    return MirrorClaim(store.apart(), path).start(store.known_folder(path), look=look)
