"""Google Drive behind the :class:`~drivestage.store.RemoteStore` protocol.

``store`` (metadata through PyDrive2), ``upload`` (the resumable upload protocol), ``retry``
(the retry policy and error typing) and ``auth`` (credentials).
"""
