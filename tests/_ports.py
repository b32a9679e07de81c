"""A TCP port for a test's torch.distributed ranks (MASTER_PORT), free until rank 0 binds it.

A port the test found free by binding port 0, then closed, is one of the kernel's ephemeral
ports: until rank 0 binds it (seconds later, once the ranks' processes have started and
imported torch) any ``bind(("", 0))`` or ``connect()`` on the machine may be given the same
number (another xdist worker's emulator, a client's connection), and the ranks' TCPStore
then fails with "address already in use". A port below the ephemeral range is never handed
out so: only a program that names it takes it, and the one found free here is not named by
any (flakes33).
"""
from __future__ import annotations

import random
import socket

#: Ports below this are left alone (well-known and registered services' usual ones).
_LOWEST = 20000
#: Not ``random``'s shared generator: a test or a training run in this process seeds it, and
#: two workers seeded alike would pick the same ports at once.
_PICK = random.SystemRandom()


def _ephemeral() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            low, high = (int(v) for v in fh.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # (Linux's default)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("", port))   # (all addresses: as torch's TCPStore binds it)
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port no program listens on now, outside the kernel's ephemeral range where there is
    room below it (else one the kernel gave, as before)."""
    low, _ = _ephemeral()
    if low - _LOWEST >= 1000:
        for port in _PICK.sample(range(_LOWEST, low), 50):
            if _free(port):
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
