"""A forked child without root's reads (tests that make a file unreadable with its mode,
run as root: test_loadfail37_find, test_pull50_hook_sidecar)."""
from __future__ import annotations

import ctypes
import json
import os

_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _without_root_reads() -> None:
    """This process (a forked child) loses the capabilities that let root read any file:
    file modes then apply to it as to any user."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()   # _LINUX_CAPABILITY_VERSION_3
    assert libc.capget(ctypes.byref(header), data) == 0, ctypes.get_errno()
    drop = ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH)) & 0xFFFFFFFF
    data[0].effective &= drop
    data[0].permitted &= drop
    assert libc.capset(ctypes.byref(header), data) == 0, ctypes.get_errno()


def in_a_child(work) -> list:
    """``work()`` in a forked child (as root: without root's reads); what it returns (JSON)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # pragma: no cover (the child)
        os.close(read)
        try:
            if os.geteuid() == 0:
                _without_root_reads()
            out = work()
        except BaseException as exc:   # (said to the parent, which asserts)
            out = ["raised", f"{type(exc).__name__}: {exc}"]
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        said = fh.read()
    assert os.waitpid(pid, 0)[1] == 0
    return json.loads(said)
