"""Small files a user names (a service-account key, a saved token, OAuth client secrets, a
training config), read no further than a bound: split from :mod:`drivestage.localfs`."""
from __future__ import annotations

from typing import Optional

#: The most read of a small JSON file a user names (a service-account key, a saved token,
#: OAuth client secrets: a few KB each).
JSON_FILE_MAX = 1 << 20


def read_at_most(path: str, limit: int) -> Optional[bytes]:
    """The bytes of the file at ``path``, or None when it holds more than ``limit``: read no
    further (``/dev/zero``, or a checkpoint given for a small JSON file, was read to the end
    of memory). Raises what opening or reading it raises."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    return None if len(data) > limit else data
