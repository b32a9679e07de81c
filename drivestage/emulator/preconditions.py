"""``If-Match`` on Drive v2 writes: a change made only if the file is still as it was read.

A File's ``etag`` changes with every change to it (content, metadata, trash). Drive v2
honours ``If-Match`` on ``files.update`` / ``files.patch``, ``files.delete`` and uploads of
new content to an existing file (the start of a resumable session, a multipart or media
``PUT``): a value that is not the file's current etag (nor ``*``) is answered
``412 conditionNotMet`` "Precondition Failed" (location ``If-Match``, a header) and nothing
changes. Sources: Chromium's Drive v2 client (``google_apis/drive``), which sends the etag it
read as ``If-Match`` on exactly those requests (``If-Match: *`` on a patch), and its test
data of Drive's 412 body. httplib2 adds ``If-Match`` by itself to a ``PUT``/``PATCH`` when
the ``Http`` was given a cache holding a ``GET`` of the same URL, so a client built with
``httplib2.Http(cache=...)`` meets this without asking for it.

:attr:`Emulator.ignores_if_match` makes it a server that applies every such write whatever
the etag named (a proxy that drops the header, a Drive-compatible server without it): a
client's compare-and-swap is then silently a plain write (lease48: the run's lease detects it).
"""
from __future__ import annotations

from typing import Optional

from drivestage.emulator.errors import EmulatorApiError


def etag_of(rec: dict) -> str:
    """The File resource's ``etag`` (quoted, as Drive writes it)."""
    return f'"{rec["id"]}/{rec["version"]}"'


def check_if_match(value: Optional[str], rec: dict, ignored: bool = False) -> None:
    """412 ``conditionNotMet`` unless ``value`` (an ``If-Match`` header; None: absent) is
    ``*`` or names ``rec``'s current etag (quoted or not, ``W/`` or not, one of a list).
    ``ignored`` (:attr:`Emulator.ignores_if_match`): never refused."""
    if value is None or ignored:
        return
    want = etag_of(rec)
    for tag in value.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == "*" or tag == want or f'"{tag}"' == want:
            return
    raise EmulatorApiError(412, "conditionNotMet", "Precondition Failed", location="If-Match",
                           location_type="header")
