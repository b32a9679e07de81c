"""A folder above DEST renamed on Drive while a mirror runs (``runs`` -> ``runs_old``): the
mirror kept pushing into ``runs_old/logs`` for as long as it ran, while a resume elsewhere
reads the path ``runs/logs``. Each period checks DEST itself (mirror21); the path from the
top is walked again every :data:`drivestage.mirror.WALK_EVERY` periods. Counted in periods
and requests."""
from __future__ import annotations

import hashlib

from drivestage.mirror import WALK_EVERY, Mirror

from _drive_state import live_md5s


def test_a_renamed_ancestor_of_dest_is_noticed_within_a_few_periods(emulator, store,
                                                                    tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"one")
    m = Mirror(str(src), (store, "runs/logs"), None).start()
    try:
        m.flush(60)
        emulator.store.update_meta(emulator.find("runs")["id"], {"title": "runs_old"})
        (src / "epoch_002.pt").write_bytes(b"two")
        for _ in range(WALK_EVERY):
            m.flush(60)
    finally:
        m.stop(60)
    both = {n: [hashlib.md5(d).hexdigest()] for n, d in
            {"epoch_001.pt": b"one", "epoch_002.pt": b"two"}.items()}
    assert emulator.find("runs/logs") is not None, "still pushing into runs_old/logs"
    assert live_md5s(emulator, "runs/logs") == both
    # The periods before the walk went on into runs_old/logs; nothing there is deleted.
    assert live_md5s(emulator, "runs_old/logs")["epoch_001.pt"] == both["epoch_001.pt"]


def test_walking_the_path_again_costs_a_request_per_level_every_few_periods(emulator, store,
                                                                            tmp_path):
    """Idle periods: 1 files.get (DEST) + 1 files.list each; the walk adds about one
    request per level of the path, once in WALK_EVERY periods."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_bytes(b"epoch\n1\n")
    m = Mirror(str(src), (store, "a/b/c/logs"), None).start()
    try:
        m.flush(60)
        emulator.clear_requests()
        for _ in range(2 * WALK_EVERY):
            m.flush(60)
        requests = len(emulator.requests)
    finally:
        m.stop(60)
    # Measured: 40 without the walk (2 per period), 46 with it (a 4-level path, twice).
    assert requests <= 2 * (2 * WALK_EVERY) + 2 * 4 * 2, requests
