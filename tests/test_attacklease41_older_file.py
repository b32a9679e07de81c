"""attacklease41: a trainer holding its lease by a PROPERTY (Drive's storage full: room41),
and a trainer of the code before room41 started at the same path once space is freed: that
one reads claim FILES alone, finds none, and makes its own; the property holder's checks
read the file, but its claim (of that generation, made earlier) ordered first, so both held
the lease and pushed into one folder. A property is written only where no claim file is
listed, so a live claim file of another beside it is such a claimant: the property holder
now yields to it (stops as taken over), pushing nothing more.
The real DriveFolder and RunLease (PyDrive2 stack) against the emulator."""
from __future__ import annotations

import json

import pytest

from _lease_pairs import on_drive, save_pair
from test_fullclaim41_lease import _full, _props, _trainer
from tests.test_messages_dedupe import put


def test_a_property_holder_yields_to_a_claim_file_made_beside_it(
        drive_env, emulator, store, tmp_path, fast_retries, monkeypatch):
    from trainer.errors import LeaseLostError
    from trainer.lease import release_all

    used, _ = _full(emulator, tmp_path, monkeypatch)
    try:
        a, ours = _trainer(tmp_path, "a", 4, minutes=1)
        a.push()   # (held by a property; its room made)
        assert _props(emulator) == [a.lease.name[:-5]]
        emulator.quota_bytes = emulator.store.quota_bytes = used + 1_000_000   # (space freed)
        folder = emulator.find("runs/exp")["id"]
        older = {"owner": "0123456789abcdef", "host": "elsewhere", "pid": 4242,
                 "machine": "m", "generation": 1, "renewals": 1, "written": 0.0}
        put(emulator, store, folder, "trainer-lease-0123456789abcdef.json",
            json.dumps(older).encode())   # (as a trainer before room41 makes it: fresh)
        before = on_drive(emulator)
        save_pair(tmp_path / "a", "epoch_005.pt", 5)
        with pytest.raises(LeaseLostError) as lost:
            a.push()
        assert str(lost.value).startswith(
            "pid 4242 on elsewhere took the run's lease on drive:runs/exp over (renewed "), \
            lost.value
        assert on_drive(emulator) == before   # (nothing more of A's)
    finally:
        release_all()
