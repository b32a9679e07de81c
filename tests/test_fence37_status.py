"""fence37: ``trainer status --json`` showed nothing of the run's lease (the plain status named a
live holder only): a script watching a run could not tell which machine trains it, nor that
the trainer that did is gone. Now ``lease`` says who holds it (or held it last), the host,
the pid, the generation, the seconds since its last renewal (Drive's clock) and whether it
is stale; the plain status says a stale one too. The CLI in-process, the real PyDrive2 stack
against the emulator, a claim made by RunLease as a trainer makes it, a real checkpoint."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

DEST = "drive:runs/exp"


def _pushed(tmp_path) -> None:
    import torch

    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder

    local = tmp_path / "logs"
    os.makedirs(local, exist_ok=True)
    state = {"format_version": ckpt.FORMAT_VERSION, "model": {"w": torch.full((64,), 1.0)},
             "optimizer": {}, "epoch": 1, "iteration": 3, "epoch_iteration": 3, "config": {},
             "run": "r1"}
    ckpt.save_checkpoint(state, os.path.join(local, "epoch_001.pt"), saved=1000.0)
    DriveFolder(DEST, str(local)).push()


def _status(tiny_config, *args: str, minutes: float = 0.05):
    from click.testing import CliRunner

    from trainer.cli import cli

    path = tiny_config(**{"drive.logs": DEST, "drive.lease_minutes": minutes})
    return CliRunner().invoke(cli, ["status", "-c", path, *args])


CHILD = """
import sys
from trainer.drive import DriveFolder
from trainer.lease import RunLease

RunLease(DriveFolder(sys.argv[1], sys.argv[2]), period_s=3.0).acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_status_json_names_the_live_holder_and_a_stale_one(drive_env, emulator, tiny_config,
                                                            tmp_path):
    """A trainer holding the lease (another process of this machine), then killed (SIGKILL:
    its claim left, its process gone: stale at once, as an ended process of this machine)."""
    _pushed(tmp_path)
    r = _status(tiny_config, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["lease"] is None   # no trainer took it

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
               DRIVESTAGE_STATE_DIR=str(tmp_path / "state-child"))
    child = subprocess.Popen([sys.executable, "-c", CHILD, DEST, str(tmp_path / "other")],
                             env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        r = _status(tiny_config, "--json")
        plain_live = _status(tiny_config)
    finally:
        child.kill()
        child.wait()
    assert r.exit_code == 0, r.output
    who = f"pid {child.pid} on {socket.gethostname()}"
    held = json.loads(r.stdout)["lease"]
    age = held.pop("renewed_age_s")
    assert 0 <= age < 9, age
    assert held == {"holder": who, "host": socket.gethostname(), "pid": child.pid,
                    "generation": 1, "stale": False, "stale_after_s": 9.0}
    said = [line for line in plain_live.output.splitlines() if "lease" in line]
    assert len(said) == 1 and re.fullmatch(
        f"{DEST}: trained now by {re.escape(who)} " + r"\(its lease renewed \d s ago\)",
        said[0]), plain_live.output

    r = _status(tiny_config, "--json")   # its process gone, its claim left
    plain = _status(tiny_config)
    stale = json.loads(r.stdout)["lease"]
    assert stale["stale"] is True and stale["holder"] == who and stale["generation"] == 1
    said = [line for line in plain.output.splitlines() if "lease" in line]
    assert len(said) == 1 and re.fullmatch(
        f"{DEST}: trained last by {re.escape(who)} " + r"\(its lease renewed \d+ s ago, stale: "
        r"that trainer is gone; the next trainer of the run takes the lease over at once\)",
        said[0]), plain.output


def test_status_json_has_no_lease_where_the_config_takes_none(drive_env, emulator, tiny_config,
                                                               tmp_path):
    from click.testing import CliRunner

    from trainer.cli import cli
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    _pushed(tmp_path)
    path = tiny_config(**{"drive.logs": DEST, "drive.lease_minutes": 0})
    # (A live claim there, of a trainer whose config takes a lease: with none there, the
    # answer was None whatever the config said, and this test could not fail: fence49.)
    holder = RunLease(DriveFolder(DEST, str(tmp_path / "other")), period_s=60.0)
    holder.acquire()
    try:
        r = CliRunner().invoke(cli, ["status", "-c", path, "--json"])
    finally:
        holder.release()
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["lease"] is None


def test_status_before_the_first_checkpoint_names_the_trainer_holding_the_lease(
        drive_env, emulator, tiny_config, tmp_path):
    """A run started (its lease taken), nothing verified on Drive yet: exit 1, and the line
    says which trainer runs it (before, only ``no verified checkpoint … yet``). A 1-minute
    lease, the run's and the status's: the holder renews nothing (not started), so its claim
    must stay live (150 s) for as long as ``trainer status`` takes on a loaded machine (over
    9 s, a 3 s period's stale time, where this flaked: lease44)."""
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    holder = RunLease(DriveFolder(DEST, str(tmp_path / "other")), period_s=60.0)
    holder.acquire()
    try:
        r = _status(tiny_config, minutes=1.0)
    finally:
        holder.release()
    assert r.exit_code == 1, r.output
    who = re.escape(f"pid {os.getpid()} on {socket.gethostname()}")
    assert re.fullmatch(f"Error: no verified checkpoint on {DEST} yet \\(trained now by {who} "
                        r"\(its lease renewed \d+ s ago\)\)", r.stderr.strip()), r.stderr
