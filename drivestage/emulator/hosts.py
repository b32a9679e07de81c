"""Which host names mean this machine: the emulator serves a request whose ``Host`` names
another host only where it listens beyond loopback (a DNS-rebinding page in a browser
names its own host), and its CLI refuses a non-loopback ``--host`` without a token."""
from __future__ import annotations

_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost", "ip6-loopback"}


def is_loopback_host(host: str) -> bool:
    """True for a name or address that can only mean this machine."""
    host = host.strip().lower().strip("[]")
    if host in _LOOPBACK_NAMES or host == "::1":
        return True
    parts = host.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() and int(p) < 256 for p in parts)


def host_name(value: str) -> str:
    """The host part of a ``Host`` header (``[::1]:80`` → ``::1``, ``a:80`` → ``a``)."""
    value = value.strip()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value
