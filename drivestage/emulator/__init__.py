"""A local Google Drive API v2 server for offline tests and demos.

It speaks the subset of Drive v2 that PyDrive2 and googleapiclient use, well
enough that the unmodified clients work against it: point a client's
``rootUrl`` at ``emu.url``. It models Drive as users have it: shortcuts, items
shared with them or by link (with resource keys), shared-drive roles, token
scopes, revisions, Drive's limits and every refusal by its real name and body.
Run it in-process::

    from drivestage.emulator import Emulator
    with Emulator(data_dir=None, quota_bytes=None, token=None) as emu:
        file_id = emu.add_file("VOC_datasets/x.zip", "/local/x.zip")
        emu.add_shortcut("x.zip", file_id)
        emu.faults.inject("PUT", r"upload_id=", status=503, retry_after=1)
        ...
        emu.requests          # what the client sent, secrets redacted
        emu.api_calls()       # Counter of calls by kind (files.list, media.download, ...)

or from the shell: ``drivestage emulator --port 8765 --data-dir /tmp/drive``.
docs/emulator.md documents every option.

Modules: :mod:`server` (the :class:`Emulator`), :mod:`handler` (one connection),
:mod:`routes_meta` / :mod:`routes_media` / :mod:`routes_resumable` / :mod:`control`
(endpoints), :mod:`store` (state; + :mod:`store_limits`, :mod:`store_trash`,
:mod:`store_ids`), :mod:`access` (who may do what), :mod:`revisions`, :mod:`listing` (files.list),
:mod:`query` (the ``q`` grammar), :mod:`render` (resources), :mod:`seed` (the Python
API for seeding), :mod:`faults` (+ :mod:`media_faults`, :mod:`listing_faults`),
:mod:`accounting` (call kinds, quota units, limits),
:mod:`batch` (``POST /batch/drive/v2``, up to 100 calls in one request),
:mod:`log` (request log, redaction), :mod:`wire` (HTTP bodies), :mod:`errors`,
:mod:`signed` (the signed links a redirected download is served at).

Control API (a reserved prefix, not part of Drive; needs the bearer token only
when ``--token`` is set):

=========================  ==================================================
``GET /_emulator/health``   ``{"ok": true, "url": ...}``
``GET /_emulator/faults``   the active faults
``POST /_emulator/faults``  ``{"kind": "inject"|"drop"|"latency"|"throttle"|"corrupt"|
                            "corrupt_upload"|"redirect_media"|"relocate_sessions"|"ignore_range"|"keep_less"|"short_pages"|
                            "empty_pages"|"expire_page_tokens"|"lag_listing"|"chaos", ...}`` with the keyword
                            arguments of the :class:`Faults` method of that name
``DELETE /_emulator/faults`` remove every fault
``GET /_emulator/requests`` the request log; ``DELETE`` clears it
``GET /_emulator/calls``    API calls by kind, quota units, the quota settings
``GET /_emulator/files``    every File resource
``POST /_emulator/files?path=a/b.zip[&drive_id=&owner=&shared_with_me=&resource_key=&abusive=1]``
                            body = content
``GET|POST /_emulator/drives``  shared drives; POST ``{"name", "role", "item_limit"}`` → ``{"id"}``
``POST /_emulator/service_account``  ``{"enabled": true, "token": optional}``
``POST /_emulator/<method>``  a Python API method (see :data:`control.CALLABLE`)
                            with the JSON body as keyword arguments
=========================  ==================================================
"""
from drivestage.emulator.errors import EmulatorApiError
from drivestage.emulator.faults import Faults
from drivestage.emulator.server import Emulator, RequestRecord

__all__ = ["Emulator", "EmulatorApiError", "Faults", "RequestRecord"]
