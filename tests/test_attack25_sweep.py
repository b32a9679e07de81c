"""attack25: a prune interrupted (Ctrl-C) at each call into the deletions in batches
(store_deletes.py, batches.py), then run again: Drive holds exactly what the policy keeps,
and no sidecar is left without its checkpoint. Every 15th call by default (all of them with
DRIVESTAGE_TEST_SWEEP=all: about 40 s each)."""
from __future__ import annotations

import os
import threading

import pytest

import drivestage
from drivestage.pruning import prune
from drivestage.retention import RetentionPolicy
from _checkpoints import md5, sidecar_json
from _sweep import every
from test_interrupt_commands import _interrupted_then_rerun


@pytest.mark.slow
@pytest.mark.parametrize("module", ["drive/store_deletes.py", "drive/batches.py"])
def test_a_ctrl_c_at_each_call_into_the_batched_deletions_of_a_prune_then_a_rerun(
        emulator, drive_env, local_state, module):
    store = drivestage.connect()
    root = os.path.join(os.path.dirname(drivestage.__file__), module)
    before = set(threading.enumerate())
    landed = 0
    for k in range(1, 400, every(15)):
        place = f"runs/r{k}"
        kept = []
        for i in range(1, 7):
            data = os.urandom(100 + i)
            side = sidecar_json(i, data)
            emulator.add_file(f"{place}/epoch_{i:03d}.pt", data)
            emulator.add_file(f"{place}/epoch_{i:03d}.json", side)
            if i == 6:
                kept = sorted([(f"epoch_{i:03d}.pt", md5(data)), (f"epoch_{i:03d}.json", md5(side))])
        where = _interrupted_then_rerun(k, root, before, lambda: prune(
            place, RetentionPolicy(keep_last=1), store=store))
        if where is None:
            break
        landed += 1
        on_drive = sorted((e.name, e.md5) for e in store.list(store.resolve(place)))
        assert on_drive == kept, f"after {where}"
    assert landed >= 2
