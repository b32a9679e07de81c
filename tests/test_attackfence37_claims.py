"""attackfence37: a claim file in ``drive.logs`` that is no trainer's claim (garbage: a number
JSON reads as infinity, a pid no process has) is no one's claim: ``trainer status --json``
says the lease as before, a trainer takes the lease, and a holder's check renews. Before, the
claim's reader let ``OverflowError`` through (``int(inf)``; ``os.kill`` of a pid past a C
int, for a claim naming this machine): ``trainer status`` died with a traceback, a trainer
could not start, and the renewal thread of a holder died silently (its claim then went stale
and another trainer took the run over). The CLI in-process, the real PyDrive2 stack against
the emulator."""
from __future__ import annotations

import json
import socket

import pytest

from tests.test_fence37_status import _pushed

DEST = "drive:runs/exp"


def _garbage() -> list[str]:
    from drivestage.temps import namespace_tag

    here = {"owner": "x", "host": socket.gethostname(), "machine": namespace_tag()}
    return ['{"owner": "x", "host": "h", "pid": 1e999, "generation": 1}',
            '{"owner": "x", "host": "h", "pid": 7, "generation": -1e999}',
            json.dumps(dict(here, pid=1 << 70, generation=1))]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_garbage_claim_is_no_ones(drive_env, emulator, tiny_config, tmp_path, which):
    from click.testing import CliRunner

    from trainer.cli import cli
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    _pushed(tmp_path)
    emulator.add_file("runs/exp/trainer-lease-0123456789abcdef.json", _garbage()[which].encode())
    path = tiny_config(**{"drive.logs": DEST, "drive.lease_minutes": 0.05})
    r = CliRunner().invoke(cli, ["status", "-c", path, "--json"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert json.loads(r.stdout)["lease"] is None, r.output
    lease = RunLease(DriveFolder(DEST, str(tmp_path / "logs")), period_s=3.0)
    lease.acquire()
    assert lease.generation == 1
    lease.check()
    lease.guard()
    lease.release()
