"""What a remote store (:mod:`drivestage.store`) answers with: an item (:class:`RemoteEntry`),
a file's first-seen mark (:class:`Mark`), the storage quota (:class:`Quota`), what a removal
did (:data:`TakenOut`). Plain frozen dataclasses; split from store.py at its line cap."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass(frozen=True)
class Mark:
    """A file's first-seen mark as retention reads it (:mod:`drivestage.first_seen`)."""

    at: float       # when a retention pass first saw the file (the later clock it knew)
    came: float     # when the store had received the file then, by the store's dates


#: What :meth:`RemoteStore.take_out` did: deleted the item; took it out of its folder, staying
#: in another ("stays") or, in no other now, placed elsewhere by Drive ("placed")
TakenOut = Literal["deleted", "stays", "placed"]


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
    #: Every folder the item is in, as its listing gave them (``parent_id`` first): Drive
    #: kept several on items from before 2020's single-parent rule, and trashing any one of
    #: them trashes the item in all (:mod:`drivestage.other_parents`). Empty where the
    #: backend does not say.
    parent_ids: tuple[str, ...] = field(default=(), compare=False)
    #: Whether there are bytes to download: False for folders and for Google Docs, Sheets,
    #: Slides (Drive exports those, it cannot serve them).
    has_content: bool = True
    #: The backend's type of the item (Drive's mimeType), named in messages about items
    #: without content ("" when the backend has none).
    kind: str = ""
    #: Why the entry cannot be read at all (a Drive shortcut whose target is gone): staging
    #: it fails with this message. None for every readable entry.
    unreadable: Optional[str] = None
    #: When the item was made (seconds since the epoch; 0 when the backend does not say):
    #: of same-named folders, every push on every machine takes the oldest.
    created: float = 0.0
    #: Whether this account may delete or trash the item (False where the backend says it
    #: may do neither: a shared drive's Contributor, a file someone else owns). A new version
    #: of a checkpoint then replaces its content in place: a new copy could never replace it.
    removable: bool = True
    #: Hex SHA-256 of the content where the backend keeps one (Drive: ``sha256Checksum``,
    #: missing on some old files); a download may be verified with it instead of the md5
    #: (:mod:`drivestage.checksums`).
    sha256: Optional[str] = None
    #: Why this account may see the file but not download it (a Drive file whose owner
    #: turned downloading off for viewers and commenters): a pull fails with this message
    #: before asking for the bytes. None where the bytes may be read.
    no_download: Optional[str] = field(default=None, compare=False)
    #: The same in a few words, for a listing (``drivestage ls``): worded for this account's
    #: role as the listing shows it (and for an ``unreadable`` entry, why: a shortcut whose
    #: target is in the trash). None where the backend gives none (ls says it neutrally).
    no_download_mark: Optional[str] = field(default=None, compare=False)
    #: Why nothing can be written into this folder by this account (a Drive folder shared
    #: with it as a viewer or commenter): a push fails with this message before writing
    #: anything. None where the backend lets it write, or does not say.
    read_only: Optional[str] = field(default=None, compare=False)
    #: Whether the store marks this folder as a run folder (Drive: a PRIVATE property this
    #: app set, :mod:`drivestage.drive.store_folders`): a push of a folder above leaves it
    #: to its run even on a machine with no record of it (:mod:`drivestage.run_folders`).
    run_mark: bool = field(default=False, compare=False)
    #: The value of the file's first-seen mark as the listing showed it (Drive: the PUBLIC
    #: property :data:`SEEN_MARK`; :mod:`drivestage.first_seen`), None where it showed none.
    seen_mark: Optional[str] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.is_dir and self.has_content:
            object.__setattr__(self, "has_content", False)

    @property
    def top(self) -> bool:
        """Whether this folder is known to be the top of a whole drive (My Drive, a shared
        drive), even where it was reached by a name below some folder (a Drive shortcut to
        it): ``push --delete`` is never aimed at one."""
        return False

    @property
    def linked(self) -> bool:
        """Whether this entry is a link to an item that lives elsewhere (a Drive shortcut):
        deleting it removes the link; what a linked folder holds is someone else's, never
        removed as part of the folder the link sits in."""
        return False

    @property
    def item_id(self) -> str:
        """The item listed itself: a link to a folder is that link (``id``: the folder's)."""
        return self.id


@dataclass(frozen=True)
class Quota:
    """Storage quota in bytes; ``total`` is None when unlimited. ``used`` is everything that
    counts toward ``total``: on Drive, ``other`` of it is what Gmail and Photos use."""

    total: Optional[int]
    used: int
    trash: int
    other: int = 0

    @property
    def free(self) -> Optional[int]:
        return None if self.total is None else max(self.total - self.used, 0)

