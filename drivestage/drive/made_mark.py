"""The mark drivestage puts on every item it makes on Drive: its ``createdDate`` is Drive's.

Drive's clock is bounded by the stamps Drive sets (:mod:`drivestage.drive.server_clock`):
an item's ``createdDate`` is Drive's clock when it was made, unless the client that made it
sent one (rclone ``-M`` sends a file's birth time; clock51). drivestage sends no date, so
an item it made carries Drive's own. A listing cannot tell which client made an item, so each
file drivestage uploads (``files.insert``) and each folder it makes carries one PRIVATE
custom property, :data:`MADE_MARK`, in the same request (no request more): only this app
(OAuth client) can read or write it, so no other tool copies it onto a file it dated itself
(rclone ``-M`` carries PUBLIC properties, its "user metadata", with a birth time). A client
that copies this app's own PRIVATE properties (the same OAuth client, used to forge) is out
of scope. An item updated in place keeps what it had: one another client made stays unmarked.
"""
from __future__ import annotations

from typing import Any, Mapping

__all__ = ["MADE_MARK", "MADE_PROPERTY", "carries"]

#: The key of the PRIVATE property on what drivestage made on Drive.
MADE_MARK = "drivestage-made"

#: The property as a File resource's ``properties`` entry (sent with the create).
MADE_PROPERTY = {"key": MADE_MARK, "value": "1", "visibility": "PRIVATE"}


def carries(res: Mapping[str, Any]) -> bool:
    """Whether the File resource ``res`` shows this app's :data:`MADE_MARK` (PRIVATE only: a
    PUBLIC one any client may copy with a date of its own)."""
    props = res.get("properties")
    return isinstance(props, list) and any(
        isinstance(p, Mapping) and p.get("key") == MADE_MARK
        and p.get("visibility") == "PRIVATE" for p in props)
