"""A running mirror's claim on its destination folder, so that ``drivestage dedupe`` beside
it refuses to merge under it (leasefull42).

A training run holds its folder by a lease claim that dedupe reads (:mod:`drivestage.
run_claims`); a plain ``drivestage mirror`` held nothing: dedupe moved what the newer of two
same-named folders held into the oldest and trashed the newer one, while the mirror kept
pushing into it by id (into the trash) or into a folder being emptied. A mirror whose
destination is on Drive now holds a PUBLIC property ``drivestage-mirror-<token>`` of that
folder (the one its push writes into: of twins, the oldest; claimed before its first push
where it is there, else after it: the push makes it, with its own checks) while its thread
runs: the value a trainer's property claim has (generation 1, the
times, pid, pid namespace, released, ``stale_s``, host: :func:`run_claims.property_value`),
renewed every :data:`PERIOD_S` by a thread of its own (a push of hours renews it too), and
removed when the mirror's thread ends. It is advisory: a claim Drive refuses (down, or a
full Drive that refuses property writes) is logged, and the mirror pushes as before. Only
``dedupe`` reads it; a trainer reads ``trainer-lease-`` claims only, so a mirror and a
trainer of one folder do not stop each other (as before).

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
from typing import TYPE_CHECKING, Optional

from drivestage import run_claims
from drivestage.errors import DriveStageError
from drivestage.paths import StorePath
from drivestage.store import RemoteEntry, RemoteStore
from drivestage.temps import namespace_tag

if TYPE_CHECKING:
    from drivestage.drive.store_folders import FolderMaking

log = logging.getLogger(__name__)

#: How often the claim is renewed (its ``stale_s``: :func:`run_claims.stale_after`, 150 s).
PERIOD_S = 60.0
_MAX_BYTES = 124   # (Drive's, for a property's key and value together)
_MAX_SWEPT = 100   # (Drive keeps 30 PUBLIC properties a file: a bound, never reached)


class MirrorClaim:
    """The claim of one mirror on ``folder`` of ``store`` (a Drive store: one that keeps
    properties) (:meth:`hold`, :meth:`release`)."""

    def __init__(self, store: "FolderMaking", folder: RemoteEntry,
                 period_s: float = PERIOD_S) -> None:
        self.store, self.folder, self.period_s = store, folder, period_s
        self.key = f"{run_claims.MIRROR_PREFIX}{secrets.token_hex(8)}"
        self._made: Optional[float] = None
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def hold(self) -> "MirrorClaim":
        """Write the claim and renew it every period until :meth:`release` (the claims there
        of mirrors gone first removed: :meth:`_sweep`)."""
        self._sweep()
        self._write()
        self._thread = threading.Thread(target=self._renewing, name="drivestage-mirror-claim",
                                        daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop renewing and remove the claim (Drive refusing: it goes stale by itself)."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(self.period_s + 60)
        try:
            self.store.set_public_property(self.folder, self.key, None)
        except DriveStageError as exc:
            log.debug("could not remove the mirror's claim %s: %s", self.key, exc)

    def _sweep(self) -> None:
        """Remove the folder's mirror claims whose holder is gone (:func:`run_claims.no_ones`;
        a value that holds no claim is no one's too): a mirror killed (SIGKILL, a Colab
        runtime gone) never removed its own, and Drive keeps 30 PUBLIC properties a file, so
        after 30 such restarts the next claim was refused (dedupe merged under that mirror)
        and so was a trainer's lease property there (attackmirror42). One ``files.get``, and
        a ``properties.delete`` for each removed (at most Drive's 30)."""
        try:
            found = self.store.public_properties(self.folder)
            now = self.store.clock()[0]
            for key, value in list(found.items())[:_MAX_SWEPT]:
                claim = run_claims.property_claim(value)
                if key.startswith(run_claims.MIRROR_PREFIX) and (
                        claim is None or run_claims.no_ones(claim, now)):
                    self.store.set_public_property(self.folder, key, None)
        except DriveStageError as exc:   # (advisory, as the claim is)
            log.debug("could not remove the claims of mirrors gone from the folder %s: %s",
                      self.folder.id, exc)

    def _renewing(self) -> None:
        while not self._done.wait(self.period_s):
            self._write()

    def _write(self) -> None:
        from drivestage.drive import server_clock

        now = round(server_clock.now(), 1)
        self._made = now if self._made is None else self._made
        claim = run_claims.PropertyClaim(1, now, self._made, os.getpid(), namespace_tag(),
                                         False, socket.gethostname(),
                                         run_claims.stale_after(self.period_s))
        try:
            self.store.set_public_property(
                self.folder, self.key,
                run_claims.property_value(claim, _MAX_BYTES - len(self.key.encode())))
        except DriveStageError as exc:   # (advisory: the mirror pushes as before)
            log.debug("could not write the mirror's claim %s on the folder %s: %s", self.key,
                      self.folder.id, exc)


def hold(store: RemoteStore, path: StorePath, look: bool = True) -> Optional[MirrorClaim]:
    """A claim held on the folder at ``path`` of ``store``; None where the store keeps no
    properties (a directory, a Drive mount) or no folder is there yet (the mirror's push
    makes it, with its own checks first: it is claimed after that push). ``look``: where
    no push found the folder yet, look it up (a request; else none is made: a mirror whose
    Drive is down paid a lookup's retries before each period's push)."""
    from drivestage.drive.store_folders import FolderMaking

    if not isinstance(store, FolderMaking):
        return None
    known = store.known_folder(path)   # (where the push wrote: of twins, the oldest)
    if known is not None:
        return MirrorClaim(store, RemoteEntry(known, path.names[-1] if path.names else "",
                                              True)).hold()
    if not look:
        return None
    try:
        folder = store.resolve(path)
    except DriveStageError as exc:   # (none yet, or twins: claimed after the push)
        log.debug("no mirror claim on %s yet: %s", path, exc)
        return None
    return MirrorClaim(store, folder).hold() if folder.is_dir else None


def follow(claim: MirrorClaim, store: RemoteStore, path: StorePath) -> MirrorClaim:
    """``claim``, or where the mirror's last push wrote into another folder at ``path`` of
    ``store`` (the claim's: its folder trashed, moved or renamed, the push made DEST anew
    there) a claim on that one, the old one removed (attackmirror42: renewed on a folder no
    push wrote into, it left the new one to dedupe). No request where it is the same."""
    known = store.known_folder(path)
    if known is None or known == claim.folder.id:
        return claim
    claim.release()
    return MirrorClaim(claim.store, RemoteEntry(known, claim.folder.name, True),
                       claim.period_s).hold()
