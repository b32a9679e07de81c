"""attackretain46: a push that prunes for room before its uploads (push_room) spares the
store's newest verified checkpoint, as its listing shows the sidecars. A listing that lags
(Drive's are eventually consistent) left out the sidecar sent a moment before, and the
checkpoint it vouches for (the only verified one) went before the new one was sent; the
upload then failed, and Drive held no checkpoint at all."""
from __future__ import annotations

import os

import _cli
from _checkpoints import md5, sidecar_json
from test_prune24_room import FOLDER, _live, env  # noqa: F401 (env: a fixture)


def test_room_made_under_a_listing_that_lags_keeps_the_only_verified_checkpoint(
        emulator, env, tmp_path):
    old = os.urandom(6000)
    emulator.add_file(f"{FOLDER}/epoch_001.pt", old)
    emulator.faults.lag_listing(created=5, titles=r"\.json$")
    emulator.add_file(f"{FOLDER}/epoch_001.json", sidecar_json(1, old, run=None))
    used = len(old) + len(sidecar_json(1, old, run=None))
    emulator.quota_bytes = emulator.store.quota_bytes = used + 1500
    src = tmp_path / "run"
    src.mkdir()
    new = os.urandom(4000)
    (src / "epoch_002.pt").write_bytes(new)
    (src / "epoch_002.json").write_bytes(sidecar_json(2, new, run=None))
    emulator.faults.inject("POST", r"^/upload/", status=400, times=None)
    code, _, err = _cli.run("push", str(src), f"drive:{FOLDER}", "--keep-last", "1")
    emulator.faults.clear()
    assert code == 1, err
    # (it waits for the uploads now: the push stops on the quota, before a byte is sent)
    assert "Error: Not enough Drive storage for 2 file(s) into drive:Models/logs" in err, err
    assert _live(emulator) == {"epoch_001.pt": md5(old),
                               "epoch_001.json": md5(sidecar_json(1, old, run=None))}
