"""Messages attack25 added, made to happen (see tests/_messages.py)."""
from __future__ import annotations

import _cli
from _checkpoints import sidecar_json
from _envs import env  # noqa: F401  (a fixture)
from _messages import renders, shown


@renders("which the plan keeps, was … since it was listed; nothing deleted")
def test_the_newest_checkpoint_trashed_while_the_listing_lags(emulator, env):
    ids = {}
    for i in (1, 2):
        data = bytes([i]) * 10
        ids[i] = emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", data)
        emulator.add_file(f"Models/logs/epoch_{i:03d}.json", sidecar_json(i, data))
    emulator.faults.lag_listing(deleted=5)
    emulator.store.set_trashed(ids[2], True)
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    shown("which the plan keeps, was … since it was listed; nothing deleted", err)
    assert "drive:Models/logs/epoch_002.pt, which the plan keeps, was moved to the trash" in err
    assert emulator.store.get(ids[1])["trashed"] is False
