"""A pull from the tests' FUSE mount (tests/_drivemount.py) that hangs at a chosen read, then
SIGINT (hang51, streams52): what the forked ``drivestage pull`` said, and when."""
from __future__ import annotations

import os
import select
import signal
import threading
import time
from typing import Callable, Collection, Mapping, NamedTuple, Sequence

from _drivemount import READ
from _forkcli import PIPE, cli_server

MTIME = 1_000_000_000 * 10**9


class Said(NamedTuple):
    first: str          # what the child wrote to stderr first, after the SIGINT
    still_hung: bool    # whether the mount still hung once it had
    code: int           # its exit code, the mount answering again
    rest: str           # the rest of its stderr
    seconds: float      # from the SIGINT to that first write


def ctrl_c_while_hung(mount, tmp_path, when: Callable[[object], bool], src: str = "ds",
                      more: Sequence[str] = (), files: Mapping[str, bytes] = {},
                      at: Collection[int] = (READ,)) -> Said:
    """``drivestage pull MOUNT/MyDrive/SRC OUT -q --jobs 1 MORE`` (``MyDrive/ds`` holds a.txt
    and b.txt, and ``files`` by name) in a child; the mount hangs at the first call of ``at``
    (FUSE opcodes: a read) for which ``when(out)`` is true; SIGINT then. What the child said
    (:class:`Said`)."""
    for name, data in {"a.txt": b"a.txt" * 1000, "b.txt": b"b.txt" * 1000, **files}.items():
        mount.change_on_drive(f"MyDrive/ds/{name}", data, MTIME)
    mount.catch_up()
    out = tmp_path / "out"
    hung = threading.Event()

    def arriving(opcode: int) -> None:
        if opcode in at and not hung.is_set() and when(out):
            mount.hang()   # (this read waits, as every call after it)
            hung.set()

    mount.arriving = arriving
    proc = cli_server().popen(["pull", str(mount.point / "MyDrive" / src), str(out), "-q",
                               "--jobs", "1", *more], env=dict(os.environ), stdout=PIPE,
                              stderr=PIPE)
    try:
        assert hung.wait(60), proc.communicate(timeout=60)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        # The line's arrival is the event (the bound is for a failure only). The process
        # itself cannot end before the mount answers: the kernel waits for the daemon's
        # answer to a read it has taken through every signal, SIGKILL too, and the process
        # with it, whatever Python does.
        said = select.select([proc.stderr], [], [], 30)[0]
        seconds = time.monotonic() - sent
        first = os.read(proc.stderr.fileno(), 4096).decode() if said else ""
        still_hung = not mount.answering.is_set()
        mount.answer()
        _, rest = proc.communicate(timeout=30)
    finally:
        mount.answer()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    return Said(first, still_hung, proc.returncode, rest.decode(), seconds)
