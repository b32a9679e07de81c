"""The remote store interface: what push, pull, prune and the hooks need.

Google Drive (:mod:`drivestage.drive`) is one implementation; a plain local
directory (:mod:`drivestage.localdir`, e.g. a Colab Drive mount or a NAS) is
another. Entries are plain frozen dataclasses; everything else is derived.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Protocol, runtime_checkable

from drivestage.errors import QuotaExceededError
from drivestage.sizes import format_size

#: Progress callbacks receive the number of bytes just moved.
ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class RemoteEntry:
    """One file or folder in a store."""

    id: str                 # backend id: Drive file id; for a directory store, the path
    name: str               # exact name (title on Drive)
    is_dir: bool
    size: int = 0           # bytes; 0 for folders
    md5: Optional[str] = None  # hex md5 of the content; None for folders
    modified: float = 0.0   # seconds since the epoch
    parent_id: Optional[str] = None


@dataclass(frozen=True)
class Quota:
    """Storage quota in bytes; ``total`` is None when unlimited."""

    total: Optional[int]
    used: int
    trash: int

    @property
    def free(self) -> Optional[int]:
        return None if self.total is None else max(self.total - self.used, 0)


@runtime_checkable
class RemoteStore(Protocol):
    """A place files are mirrored to and staged from."""

    def describe(self, entry: RemoteEntry) -> str:
        """A human-readable location for messages (``drive:a/b/c.zip``)."""

    def resolve(self, path: str) -> RemoteEntry:
        """Find the entry at ``path`` (store-relative, ``/``-separated, or ``id:...``).

        Raises NotFoundError, or DuplicateNameError naming the colliding ids."""

    def stat(self, entry: RemoteEntry) -> RemoteEntry:
        """Fresh metadata for ``entry`` (one API call)."""

    def list(self, folder: RemoteEntry) -> list[RemoteEntry]:
        """Children of ``folder`` (one listing, all pages), trashed items excluded."""

    def make_folders(self, path: str) -> RemoteEntry:
        """``mkdir -p`` for ``path``; returns the deepest folder."""

    def read_range(self, entry: RemoteEntry, start: int, end: int) -> Iterator[bytes]:
        """Stream bytes ``[start, end)`` of a file."""

    def upload(self, local_path: str, folder: RemoteEntry, name: str, *,
               replace: Optional[RemoteEntry] = None, progress: Optional[ProgressFn] = None
               ) -> RemoteEntry:
        """Upload a local file as ``folder/name`` (in place of ``replace`` when given,
        keeping its id) and return the verified entry; md5 checked by the caller."""

    def delete(self, entry: RemoteEntry, *, trash: bool = False) -> None:
        """Delete permanently, or move to the trash when ``trash``."""

    def quota(self) -> Quota:
        """Storage quota of the account (or the filesystem)."""


def quota_error(needed: int, where: str, quota: Optional[Quota]) -> QuotaExceededError:
    """The error for ``needed`` bytes that do not fit into a store, with the free and trash
    bytes of ``quota`` when known, and what to do about it."""
    free = trash = None
    if quota is not None:
        free, trash = quota.free, quota.trash
    parts = [f"needed {format_size(needed)}"]
    if free is not None:
        parts.append(f"free {format_size(free)}")
    if trash is not None:
        parts.append(f"in trash {format_size(trash)}")
    hint = "Free space on Drive"
    if trash:
        hint = "Empty the Drive trash (it counts toward the quota), free space on Drive"
    return QuotaExceededError(
        f"Not enough Drive storage for {where or 'the upload'}: " + ", ".join(parts)
        + f". {hint}, or prune with a policy (--keep-last/--max-bytes).",
        needed=needed, free=free, trash=trash)
