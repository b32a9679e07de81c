"""attacklease41: ``drivestage dedupe`` beside a trainer that holds its run folder by a
PROPERTY (room41: Drive's storage full, the claim file refused). guards41's refusal read the
claim files of each folder only: the property holder's folder was merged under it (its
contents moved into the oldest twin, the folder it renews its claim on and pushes into by id
sent to the trash). A live property claim now refuses the pair as a claim file does, in one
line (exit 1), nothing moved; a released one holds nothing.
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import re

import pytest

from tests.test_guards41_dedupe import _run, _twins
from tests.test_messages_dedupe import live


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries, monkeypatch):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""
    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")


def _props(emulator, folder_id: str) -> list[str]:
    return sorted(p["key"] for p in emulator.properties_of(folder_id)
                  if p["key"].startswith("trainer-lease-"))


@pytest.mark.parametrize("held", ["oldest", "newer"])
def test_dedupe_refuses_a_pair_a_run_holds_by_a_property_and_moves_nothing(
        emulator, store, tmp_path, held):
    import os
    import socket

    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    old, new = _twins(emulator, store)
    ours = old if held == "oldest" else new
    used = sum(int(f.get("fileSize", 0)) for f in emulator.files())
    emulator.quota_bytes = emulator.store.quota_bytes = used + 10   # (no claim file fits)
    (tmp_path / "run").mkdir()
    lease = RunLease(DriveFolder(f"drive:id:{ours}", str(tmp_path / "run")), period_s=60.0)
    lease.acquire()
    try:
        key = lease.name[:-len(".json")]
        assert _props(emulator, ours) == [key]   # (held by the property: room41)
        before = live(emulator)
        assert not any("trainer-lease-" in k for k in before)   # (no claim file)
        for args in (("dedupe", "drive:runs/exp"), ("dedupe", "drive:runs/exp", "--dry-run")):
            code, out, err = _run(*args)
            assert code == 1, err
            line = err.splitlines()[-1]
            assert re.fullmatch(re.escape(
                f"Error: drive:runs/exp (id {ours}) is held by a training run now (its lease "
                f"{key}, a property of the folder: pid {os.getpid()} on {socket.gethostname()}, "
                "renewed ") + r"\d+ s ago" + re.escape(
                "): merging it would move files under that run's pushes. Stop that run first "
                "(or wait until its lease is stale: ") + r"2\.\d min" + re.escape(
                " without a renewal), then run this again"), line), line
            assert live(emulator) == before and _props(emulator, ours) == [key]
    finally:
        lease.release()
    assert _props(emulator, ours) == []
    # Its run ended (the property removed): merged as before.
    code, out, err = _run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert set(live(emulator)) == {"runs", "runs/exp", "runs/exp/a.txt", "runs/exp/b.txt"}


def test_a_released_property_claim_holds_nothing(emulator, store, tmp_path):
    """A property claim marked released (its removal refused) is no one's: merged."""
    from drivestage.drive import server_clock
    from drivestage.store import RemoteEntry
    from trainer import lease_props

    old, new = _twins(emulator, store)
    now = server_clock.now()
    lease_props.write(store, RemoteEntry(new, "exp", True), "feedfeedfeedfeed", 1, now, now,
                      released=True)
    code, out, err = _run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert set(live(emulator)) == {"runs", "runs/exp", "runs/exp/a.txt", "runs/exp/b.txt"}
