"""Talking to the emulator over a bare socket: a request whose body never ends (sent by a
thread of its own until the emulator closes the connection), and the answer read back."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Optional


@contextmanager
def sent_for_ever(sock: socket.socket, piece: Optional[bytes], seconds: float) -> Iterator[None]:
    """Within the block, a thread sends ``piece`` over ``sock`` again and again (None or
    empty: nothing) until the emulator closes the connection, the block ends or ``seconds``
    pass; it is joined as the block ends."""
    stop = threading.Event()

    def send_for_ever() -> None:
        deadline = time.monotonic() + seconds
        while piece and not stop.is_set() and time.monotonic() < deadline:
            try:
                sock.sendall(piece)
            except OSError:
                return   # (the emulator closed the connection)

    sender = threading.Thread(target=send_for_ever, daemon=True)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join(10)


def answer(sock: socket.socket, deadline: float) -> tuple[bytes, bool]:
    """(the answer's bytes, whether the connection then ended) read before ``deadline``."""
    data, ended = b"", False
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            ended = True
            break
        if not chunk:
            ended = True
            break
        data += chunk
    return data, ended


def parsed(data: bytes) -> tuple[int, dict, bytes]:
    """An HTTP answer's (status, headers by lower-case name, body)."""
    top, _, body = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body
