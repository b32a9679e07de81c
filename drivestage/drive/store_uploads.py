"""Uploads of :class:`drivestage.drive.store.DriveStore` (a mixin; split from store.py at its
line cap): a file sent as a new one with the id chosen for it (:mod:`drivestage.drive.ids`)
or into a file in place, once that file is still as it was listed (:meth:`Uploads._as_listed`);
the bytes go by :func:`drivestage.drive.upload.upload_file`."""
from __future__ import annotations

import logging
from typing import Any, Iterable, Optional, Sequence

from drivestage.drive import ids, provenance
from drivestage.drive.resources import is_trashed
from drivestage.drive.transport import Transport
from drivestage.drive.upload import upload_file
from drivestage.errors import MovedAwayError, NotFoundError, PermissionDeniedError
from drivestage.paths import printable
from drivestage.store import Md5Source, ProgressFn, RemoteEntry, RemoteStore

# (store.py's name: its lines kept the logger they always had)
log = logging.getLogger("drivestage.drive.store")


def joined(where: str, name: str) -> str:
    """``drive:a`` + ``b`` -> ``drive:a/b`` (``drive:`` + ``b`` -> ``drive:b``); the name is
    made safe to print (a Drive title may hold control characters and ANSI escapes)."""
    name = printable(name)
    return f"drive:{name}" if where == "drive:" else f"{where.rstrip('/')}/{name}"


class Uploads(RemoteStore):
    """Sending files; the store supplies what it names and knows."""

    transport: Transport
    creates: ids.Creates
    _listed_in: dict[str, str]

    def _content(self, entry: RemoteEntry) -> RemoteEntry:  # the store's
        raise NotImplementedError

    def _get(self, file_id: str, where: str) -> dict[str, Any]:  # the store's
        raise NotImplementedError

    def _remember(self, entry: RemoteEntry, where: str) -> RemoteEntry:  # the store's
        raise NotImplementedError

    def _writable(self, folder: RemoteEntry, where: str) -> None:  # the store's
        raise NotImplementedError

    def check_replaceable(self, entry: RemoteEntry) -> None:
        """A shortcut is never replaced: its target is someone's file, and removing the
        shortcut itself would lose the user's link to it."""
        if self._content(entry) is not entry:
            raise PermissionDeniedError(
                f"{self.describe(entry)} is a shortcut; drivestage does not replace a "
                "shortcut's target. Remove the shortcut on Drive, or push into another folder.")

    def _as_listed(self, entry: RemoteEntry, where: str,
                   folder: RemoteEntry) -> Optional[RemoteEntry]:
        """``entry``, to be updated in place, while files.get shows it under the name a
        listing did; None (a new file is made instead) when it was renamed or trashed since,
        or is gone. Drive's listings lag: an update by id overwrote a log (or a sidecar) the
        user had renamed to keep it, and renamed it back. One files.get. Out of ``folder``:
        MovedAwayError, for the push to tell a dedupe's move from the user's (push_job)."""
        try:
            res = self._get(entry.id, where)
        except NotFoundError:
            return None
        title = res.get("title")
        change = "trashed" if is_trashed(res) else f"renamed {printable(str(title))!r}" \
            if entry.name and title != entry.name else None
        if change is None and provenance.is_in(res, folder.id) is False:
            raise MovedAwayError(where, provenance._parent_ids(res) or [])
        if change is None:
            return entry
        log.warning("%s was %s on Drive since it was listed; left as it is, sent as a new "
                    "file", where, change)
        return None

    def upload(self, local_path: str, folder: RemoteEntry, name: str, *,
               replace: Optional[RemoteEntry] = None, progress: Optional[ProgressFn] = None,
               chunk_size: Optional[int] = None, md5_cache: Optional[Md5Source] = None,
               follow: bool = False, real: str = "") -> RemoteEntry:
        """Resumable, md5-verified upload (see :mod:`drivestage.drive.upload`)."""
        self._writable(folder, joined(self.describe(folder), name))
        if replace is not None:
            self.check_replaceable(replace)
            replace = self._as_listed(replace, joined(self.describe(folder), name), folder)
        if replace is None:  # a new file: made with the id chosen for it (drive.ids)
            sent = self.creates.upload(self.transport, self, self._get, local_path, folder,
                                       name, chunk_size=chunk_size, progress=progress,
                                       md5_cache=md5_cache, follow=follow, real=real)
        else:
            sent = upload_file(self.transport, self, local_path, folder, name, replace=replace,
                               chunk_size=chunk_size, progress=progress, md5_cache=md5_cache,
                               follow=follow, real=real)
        return self._remember(sent, joined(self.describe(folder), name))  # (named by its path)

    def reserve_creates(self, creates: Sequence[tuple[str, RemoteEntry, str]],
                        within: Iterable[RemoteEntry]) -> None:
        self.creates.prepare(creates, within, self._listed_in)
