"""A push from a machine behind (its `last.pt` at epoch 4) right after another machine of the
same run pushed epoch 5, while Drive's listing still shows the pair as it was before (epoch
3). The sidecar read against its listed md5 failed (other bytes), which counted as "cannot
tell", so the push replaced the pair: its epoch-4 sidecar over epoch 5's, its `last.pt`
beside epoch 5's, which a later push's repair then removed as the copy no sidecar vouched
for: the run went back a checkpoint (left by attackpush26). The sidecar as it is now says
where Drive's run is (its checkpoint was verified on Drive before it was sent): the pair is
left as it is, and said so."""
from __future__ import annotations

import time

import pytest

from _checkpoints import save
from _cli import run
from _drive_state import live_md5s

FOLDER = "Models/logs"
T0 = time.time() - 3600


@pytest.fixture(autouse=True)
def _fast(fast_retries, drive_env, local_state):
    """Backoffs of a millisecond; the emulator as Drive."""


def test_a_push_from_behind_under_a_lagging_listing_leaves_the_further_on_pair(emulator,
                                                                                tmp_path):
    b = str(tmp_path / "b")
    save(b, "last", 3, T0 + 300, saved=T0 + 300)
    code, _, err = run("push", b, f"drive:{FOLDER}")
    assert code == 0, err
    emulator.faults.lag_listing(created=5, updated=5, deleted=5)
    theirs = save(b, "last", 5, T0 + 500, saved=T0 + 500)    # B goes on, pushes epoch 5
    code, _, err = run("push", b, f"drive:{FOLDER}")
    assert code == 0, err
    a = str(tmp_path / "a")
    save(a, "last", 4, T0 + 400, saved=T0 + 400)             # A, behind, pushes epoch 4
    code, _, err = run("push", a, f"drive:{FOLDER}")
    assert code == 0, err
    assert (f"drive:{FOLDER}/last.pt is further on (epoch 5) than {a}/last.pt (epoch 4) of "
            "the same run; left as it is") in err, err
    emulator.faults.lag_listing()
    for _ in range(5):                                       # the listings catch up
        assert run("push", b, f"drive:{FOLDER}")[0] == 0
    assert live_md5s(emulator, FOLDER) == theirs
