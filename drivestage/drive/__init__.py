"""Google Drive behind the :class:`~drivestage.store.RemoteStore` protocol.

:mod:`~drivestage.drive.store` (metadata through PyDrive2),
:mod:`~drivestage.drive.places` (:func:`connect`; My Drive, shared drives, Shared with me),
:mod:`~drivestage.drive.shortcuts` (following shortcuts), :mod:`~drivestage.drive.login` (the
console login), :mod:`~drivestage.drive.connections` (the API root, httplib2 settings),
:mod:`~drivestage.drive.media` (ranged reads, upload bodies), :mod:`~drivestage.drive.upload`
(the resumable upload protocol), :mod:`~drivestage.drive.transport` (per-thread connections
and the retry loop), :mod:`~drivestage.drive.answers` (the one place an HTTP answer becomes a
typed error), :mod:`~drivestage.drive.retry` (the retry policy),
:mod:`~drivestage.drive.resources` (File resource -> entry) and :mod:`~drivestage.drive.auth`
(credentials).
"""
from drivestage.drive.places import connect, open_drive
from drivestage.drive.store import DriveStore

__all__ = ["DriveStore", "connect", "open_drive"]
