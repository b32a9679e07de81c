"""A local Google Drive API v2 server for offline tests and demos.

It speaks the subset of Drive v2 that PyDrive2 and googleapiclient use, well
enough that the unmodified clients work against it: point a client's
``rootUrl`` at ``emu.url``. Run it in-process::

    from drivestage.emulator import Emulator
    with Emulator(data_dir=None, quota_bytes=None, token=None) as emu:
        file_id = emu.add_file("VOC_datasets/x.zip", "/local/x.zip")
        emu.faults.inject("PUT", r"upload_id=", status=503, retry_after=1)
        ...
        emu.requests          # what the client sent, Authorization redacted

or from the shell: ``drivestage emulator --port 8765 --data-dir /tmp/drive``.

Control API (a reserved prefix, not part of Drive; needs the bearer token only
when ``--token`` is set):

=========================  ==================================================
``GET /_emulator/health``   ``{"ok": true, "url": ...}``
``GET /_emulator/faults``   the active faults
``POST /_emulator/faults``  ``{"kind": "inject"|"drop"|"latency"|"throttle"|"corrupt"|
                            "corrupt_upload"|"chaos", ...}`` with the keyword
                            arguments of the :class:`Faults` method of that name
``DELETE /_emulator/faults`` remove every fault
``GET /_emulator/requests`` the request log; ``DELETE`` clears it
``GET /_emulator/files``    every File resource
``POST /_emulator/files?path=a/b.zip[&drive_id=...]``  body = content
``GET|POST /_emulator/drives``  shared drives; POST ``{"name": ...}`` → ``{"id": ...}``
``POST /_emulator/service_account``  ``{"enabled": true, "token": optional}``
=========================  ==================================================
"""
from drivestage.emulator.faults import Faults
from drivestage.emulator.server import Emulator, RequestRecord

__all__ = ["Emulator", "Faults", "RequestRecord"]
