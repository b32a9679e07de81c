"""removalfence39: a stop's save sent alone (``DriveFolder.send_alone``) removes the older
pair of its names once the new one is verified, the twins of its bytes, the old copy a
directory kept aside: each removal is preceded by the run's lease now. The older pair was
removed after one check before the first removal (its sidecar, then its checkpoint): a
lease lost between two removals (another trainer took the run over) still removed the rest.
Lost there, the lease's error is the send's, never taken for a removal Drive refused (a
warning, the send a success). The lease refuses by what the emulator's request log shows,
never by time; the real PyDrive2 stack against the emulator; real checkpoint files."""
from __future__ import annotations

import os
import tempfile

import pytest

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from test_removalfence39 import _removed_since
from test_stopleft31_replace import SPEC, _both, _md5s, _on_drive, _pair, _pushed_earlier


class _Lease:
    """The run's lease as a send sees it (``check`` at its start, ``guard`` at each commit
    point: trainer.lease.RunLease's), lost once Drive removed an item since the send began."""

    def __init__(self, emulator) -> None:
        self.emulator, self.start = emulator, len(emulator.requests)

    def check(self) -> None:
        pass

    def guard(self) -> None:
        from trainer.errors import LeaseLostError

        if _removed_since(self.emulator, self.start):
            raise LeaseLostError("another trainer took the run over")


def test_a_lease_lost_while_the_older_pair_goes_removes_nothing_more(
        emulator, drive_env, local_state, store, tmp_path):
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseLostError

    old = _pushed_earlier(tmp_path)
    new = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-x"), weight=1.0, saved=2000.0)
    drive = DriveFolder(SPEC, str(tmp_path / "logs"))
    drive.lease = lease = _Lease(emulator)
    with pytest.raises(LeaseLostError):
        drive.send_alone(_both(new))
    assert _removed_since(emulator, lease.start) == 1   # the older sidecar (it goes first)
    ckpt = os.path.basename(old)
    assert _on_drive(store) == sorted(_md5s(new) + [e for e in _md5s(old) if e[0] == ckpt])
