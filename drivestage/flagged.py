"""Sidecars on the store that Drive flagged as malware or spam and will not serve to this
account (403 ``cannotDownloadAbusiveFile``: its scanner flags files it cannot tell; Drive
serves such a file only to its owner, and only acknowledging the flag).

What such a sidecar says (run, epoch, md5) cannot be read, so whose its checkpoint is cannot
be told. A push leaves that checkpoint and its sidecars as they are ("flagged, kept":
:mod:`drivestage.other_runs`), and retention neither removes them (:data:`KEPT`,
:mod:`drivestage.folder_view`). Before, the push failed at the read with pull's advice
``pull again with --acknowledge-abuse``, at every period of a mirror, for good
(attackstream40). Each such sidecar is said once per store object (a mirror's or a
trainer's pushes share theirs), not at every push.
"""
from __future__ import annotations

import threading
import weakref
from typing import MutableMapping

from drivestage.fork_drop import free_in_forks
from drivestage.store import RemoteStore

#: Why retention keeps such a checkpoint and its sidecar (a plan's label).
KEPT = "its sidecar is flagged by Drive (whose run it is cannot be told)"

_LOCK = free_in_forks(threading.Lock())
_SAID: MutableMapping[RemoteStore, set[str]] = weakref.WeakKeyDictionary()


def first_time(store: RemoteStore, side: str) -> bool:
    """Whether ``side`` (a flagged sidecar on ``store``, as the store names it) is met for
    the first time by this store object: then it is said; after, not again."""
    with _LOCK:
        said = _SAID.setdefault(store, set())
        if side in said:
            return False
        said.add(side)
        return True
