"""attacklease42: a lease claim whose generation no trainer writes (a garbage property, a
hostile one, a claim file edited by hand) on the run folder of a full Drive.

Trainers count generations up by one from 1, and a new claim takes the highest listed plus
one. A property of 70 digits fits Drive's 124 bytes (key and value), but the next claim's
property, the same digits and its own times, pid and host, did not: Drive refused it (403
propertyLengthLimitExceeded, said as "permission denied ... sharing settings"), and the lease
stayed not taken at every try, so no push removed anything and the run never made its room.
A generation of 2**31 or more is garbage now, no one's claim (drivestage.run_claims).
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import json

import pytest

from drivestage.drive import server_clock
from drivestage.store import RemoteEntry
from test_fullclaim41_lease import _full, _props, _trainer
from test_lease39_pending_guard import _claims
from tests.test_messages_dedupe import put

GARBAGE = "9" * 70


@pytest.mark.parametrize("where", ["property", "file"])
def test_a_claim_of_a_garbage_generation_is_no_ones_and_the_lease_is_held_by_a_property(
        drive_env, emulator, store, tmp_path, fast_retries, monkeypatch, where):
    from trainer.lease import release_all

    folder = emulator.add_folder("runs/exp")
    if where == "file":   # (put while Drive had room)
        put(emulator, store, folder, "trainer-lease-feedfeedfeedfeed.json", json.dumps(
            {"owner": "feedfeedfeedfeed", "host": "h", "pid": 7, "generation": int(GARBAGE)}
        ).encode())
    _full(emulator, tmp_path, monkeypatch)
    if where == "property":
        now = round(server_clock.now(), 1)
        store.set_public_property(RemoteEntry(folder, "exp", True),
                                  "trainer-lease-feedfeedfeedfeed", f"{GARBAGE}|{now:.0f}|1|7||0|")
    try:
        run, _ = _trainer(tmp_path, "run", 4)
        assert not run.lease.pending, run.lease.why_pending
        assert run.lease.generation == 1
        mine = run.lease.name[:-5]
        [value] = [p["value"] for p in emulator.properties_of(folder) if p["key"] == mine]
        assert len(mine.encode()) + len(value.encode()) <= 124
        assert value.startswith("1|")
    finally:
        release_all()
    # (Garbage is no one's: left as it was, neither read nor removed.)
    assert _props(emulator) == (["trainer-lease-feedfeedfeedfeed"] if where == "property" else [])
    assert _claims(emulator) == (["trainer-lease-feedfeedfeedfeed.json"] if where == "file" else [])


def test_the_longest_claim_a_trainer_writes_fits_drives_124_bytes(
        drive_env, emulator, store, monkeypatch):
    """The largest generation a claim may have, the largest pid Linux gives (pid_max is
    2**22) and a host name of 253 characters, not all ASCII: the property is written (the
    emulator refuses more than 124 bytes, as Drive does), the host cut to fit at a whole
    character, and read back as written."""
    import socket

    from drivestage import run_claims
    from trainer import lease_props

    folder = RemoteEntry(emulator.add_folder("runs/exp"), "exp", True)
    monkeypatch.setattr(socket, "gethostname", lambda: "é" * 126 + "h")
    monkeypatch.setattr(lease_props.os, "getpid", lambda: 1 << 22)
    then = server_clock.now() + 100 * 365 * 86400.0   # (a century on)
    lease_props.write(store, folder, "f" * 16, run_claims.MAX_GENERATION - 1, then, then)
    [claim] = lease_props.claims(store, folder)
    assert (claim.generation, claim.pid) == (run_claims.MAX_GENERATION - 1, 1 << 22)
    assert claim.host and set(claim.host) == {"é"}
