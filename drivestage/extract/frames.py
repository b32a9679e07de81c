"""Messages between an extraction and its worker processes (:mod:`.workers`): marshal's
types in frames of a 4-byte length, read and written whole on a pipe."""
from __future__ import annotations

import marshal
import struct
from typing import Any, BinaryIO, Optional

#: A message on a pipe (marshal's types only).
Message = tuple[Any, ...]

_LEN = struct.Struct("<I")
#: No message is longer (a batch of orders: tens of KiB): a longer length is garbage (text
#: some program printed where frames go), never a reason to read on for gigabytes.
_MAX_FRAME = 16 << 20


def put_message(pipe: BinaryIO, message: Message) -> None:
    """Write ``message`` as one frame (BrokenPipeError: the reader is gone)."""
    data = marshal.dumps(message)
    view = memoryview(_LEN.pack(len(data)) + data)
    while view:  # a raw write may take part of it (a signal handled in the middle)
        n = pipe.write(view)
        if not n:  # the pipes are blocking: nothing written is no state to loop on
            raise BrokenPipeError("the pipe took nothing")
        view = view[n:]


def get_message(pipe: BinaryIO) -> Optional[Message]:
    """The next message; None at the pipe's end or for a garbled frame."""
    head = _read_exactly(pipe, _LEN.size)
    if head is None:
        return None
    (n,) = _LEN.unpack(head)
    if n > _MAX_FRAME:
        return None
    body = _read_exactly(pipe, n)
    if body is None:
        return None
    try:
        message = marshal.loads(body)
    except (EOFError, ValueError, TypeError):
        return None
    return message if isinstance(message, tuple) and message else None


def _read_exactly(pipe: BinaryIO, n: int) -> Optional[bytes]:
    parts, left = [], n
    while left:
        got = pipe.read(left)
        if not got:
            return None
        parts.append(got)
        left -= len(got)
    return b"".join(parts)
