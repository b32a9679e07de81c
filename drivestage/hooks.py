"""Hooks for training loops: mirror checkpoints to Drive in the background, resume from it.

Plain Python (no torch)::

    sync = CheckpointSync("drive:Models/yolov4-tiny/logs",
                          RetentionPolicy(keep_last=3, keep_best=1, metric="map50", mode="max"),
                          local_dir="runs/x")
    entry = sync.latest_remote_checkpoint()        # resuming on a fresh machine?
    if entry is not None:
        sync.fetch(entry, "runs/x/" + entry.name)
        sync.protect(entry.name)
    ...
    save(...)                                      # writes epoch_004.pt atomically
    sync.on_save("runs/x/epoch_004.pt", 4, {"map50": 0.41})   # returns at once
    ...
    sync.on_train_end()                            # flush; raises if the mirror failed

A checkpoint counts as *verified* on the remote when its sidecar is there
(``epoch_004.pt.json``, or ``epoch_004.json``): push uploads a sidecar only
after its checkpoint's md5 matched Drive's.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Iterable, Mapping, Optional, Sequence

from drivestage.localfs import atomic_write
from drivestage.download import download
from drivestage.errors import NotFoundError, UsageError
from drivestage.mirror import Dest, Mirror, PushResult, sidecar_map
from drivestage.remote import open_store
from drivestage.retention import RetentionPolicy, parse_sidecar
from drivestage.store import RemoteEntry
from drivestage.state import Md5Cache

log = logging.getLogger(__name__)

_SIDECAR_MAX = 1 << 20


class CheckpointSync:
    """Mirror ``local_dir`` to ``dest`` with ``policy``, driven by a training loop's saves."""

    def __init__(self, dest: Dest, policy: Optional[RetentionPolicy] = None, *,
                 local_dir: str, every: Optional[float] = None, store: Any = None,
                 include: Sequence[str] = (), exclude: Sequence[str] = (),
                 use_trash: bool = False, chunk_size: Optional[int] = None,
                 protect: Iterable[str] = (), write_sidecars: bool = True):
        if not local_dir:
            raise UsageError("CheckpointSync needs local_dir, the folder the checkpoints are "
                             "written to")
        os.makedirs(local_dir, exist_ok=True)
        self.local_dir = os.path.abspath(local_dir)
        self.policy = policy or RetentionPolicy()
        cache = Md5Cache()
        self._store, self._path = open_store((store, str(dest)) if store is not None else dest,
                                             md5_cache=cache)
        self.write_sidecars = write_sidecars
        self.mirror = Mirror(self.local_dir, (self._store, self._path), self.policy,
                             every=every, include=include, exclude=exclude,
                             use_trash=use_trash, chunk_size=chunk_size,
                             protect=protect, md5_cache=cache,
                             label=dest if isinstance(dest, str) else None).start()

    # -- training-loop events
    def on_save(self, path: str, epoch: Optional[int] = None,
                metrics: Optional[Mapping[str, Any]] = None) -> None:
        """A checkpoint was written (atomically) to ``path``: mirror the folder soon.

        Returns at once. Writes the sidecar ``<path>.json`` (epoch, metrics) when
        neither ``<path>.json`` nor ``<stem>.json`` exists yet.
        """
        full = os.path.abspath(path)
        if os.path.commonpath([full, self.local_dir]) != self.local_dir:
            log.warning("%s is outside %s; it will not be mirrored", path, self.local_dir)
        elif self.write_sidecars and (epoch is not None or metrics):
            self._ensure_sidecar(full, epoch, metrics or {})
        self.mirror.sync_now()

    def on_train_end(self, timeout: Optional[float] = None) -> Optional[PushResult]:
        """Flush the last saves and stop the background thread; raises MirrorError on failure."""
        return self.mirror.stop(timeout)

    def flush(self, timeout: Optional[float] = None) -> Optional[PushResult]:
        """Wait until everything saved so far is on the remote (raises MirrorError)."""
        return self.mirror.flush(timeout)

    def protect(self, name: str) -> None:
        """Never let the policy delete ``name`` (the checkpoint this run resumed from)."""
        self.mirror.protect(name)

    # -- resuming
    def latest_remote_checkpoint(self) -> Optional[RemoteEntry]:
        """The newest verified checkpoint on the remote, or None.

        Candidates are the files with a sidecar; newest = highest sidecar epoch
        (else the epoch in the name); on a tie a name matching the policy's
        pattern wins over ``last.pt``-style names, then the newer file.
        """
        try:
            folder = self._store.resolve(self._path)
        except NotFoundError:
            return None
        entries = [e for e in self._store.list(folder) if not e.is_dir]
        by_name = {e.name: e for e in entries}
        best = None
        for name, side_name in sidecar_map(by_name).items():
            entry, side = by_name[name], by_name[side_name]
            if entry.md5 is None and entry.size:
                continue
            epoch = self._sidecar_epoch(side)
            named = self.policy.regex.search(name)
            if epoch is None and named is not None and "epoch" in named.re.groupindex:
                try:
                    epoch = int(named.group("epoch"))
                except (TypeError, ValueError):
                    epoch = None
            if epoch is None:
                continue
            key = (epoch, named is not None, entry.modified)
            if best is None or key > best[0]:
                best = (key, entry)
        return best[1] if best else None

    def fetch(self, remote: RemoteEntry, local_path: str) -> str:
        """Download ``remote`` to ``local_path``, md5-verified; the target appears only
        when complete. Returns ``local_path``."""
        folder = os.path.dirname(os.path.abspath(local_path))
        os.makedirs(folder, exist_ok=True)
        download(self._store, remote, local_path)
        return local_path

    # -- internals
    def _sidecar_epoch(self, side: RemoteEntry) -> Optional[int]:
        if side.size > _SIDECAR_MAX:
            return None
        data = b"".join(self._store.read_range(side, 0, side.size)) if side.size else b""
        return parse_sidecar(data)[0]

    @staticmethod
    def _ensure_sidecar(path: str, epoch: Optional[int], metrics: Mapping[str, Any]) -> None:
        stem = os.path.splitext(path)[0]
        if os.path.exists(path + ".json") or (stem != path and os.path.exists(stem + ".json")):
            return
        plain = {}
        for k, v in metrics.items():
            try:
                plain[str(k)] = float(v)
            except (TypeError, ValueError):
                continue
        data = json.dumps({"epoch": epoch, "metrics": plain}, sort_keys=True).encode()
        # Written atomically: push never mirrors a half-written sidecar.
        atomic_write(path + ".json", data)
