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
import os
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


def test_a_huge_claim_and_many_claims_leave_the_live_holder_named(
        drive_env, emulator, tiny_config, tmp_path):
    """A claim-named file of 1 MB (never read: no claim is that big) and 30 claims of ended
    trainers (another host's, generations 1..30, each read once): ``trainer status --json``
    names the live holder, which took generation 31 past them."""
    from click.testing import CliRunner

    from trainer.cli import cli
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    _pushed(tmp_path)
    big = {"owner": "y", "host": "elsewhere", "pid": 5, "generation": 99, "pad": "x" * (1 << 20)}
    emulator.add_file("runs/exp/trainer-lease-ffffffffffffffff.json", json.dumps(big).encode())
    for g in range(1, 31):
        claim = {"owner": f"o{g}", "host": "elsewhere", "pid": g, "generation": g}
        emulator.add_file(f"runs/exp/trainer-lease-{g:016x}.json", json.dumps(claim).encode())
    holder = RunLease(DriveFolder(DEST, str(tmp_path / "holder")), period_s=3.0,
                      take_over=True)   # (the 30 look live: just written)
    holder.acquire()
    try:
        path = tiny_config(**{"drive.logs": DEST, "drive.lease_minutes": 0.05})
        r = CliRunner().invoke(cli, ["status", "-c", path, "--json"])
    finally:
        holder.release()
    assert r.exit_code == 0, r.output
    held = json.loads(r.stdout)["lease"]
    assert (held["pid"], held["generation"], held["stale"]) == (os.getpid(), 31, False), held
