"""pushgap47 (2a): ``push --delete`` spares a checkpoint listed without a sidecar that is
newer than every verified one: its sidecar may be on its way, left out of a listing that
lags (retain47). With no bound, one a crashed uploader left alone stayed through every
``--delete`` for good (a checkpoint's size of the quota) while nothing newer was verified.
Now one the store has held a day, by its dates and by its first-seen mark (the rule of
orphan sidecars and lone autosaves), goes; the newest verified pair and a fresh lone
checkpoint stay. Ages are set through the emulator's API (createdDate, modifiedDate and the
mark as a pass two days ago wrote it), never waited for."""
from __future__ import annotations

import os
import time

from _checkpoints import md5, sidecar_json
from _cli import run
from _drive_state import held_since, live_md5s
from _envs import env  # noqa: F401  (a fixture)

DAY = 24 * 3600.0


def _pushed(tmp_path):
    """SRC with the epoch_004 pair, pushed: Drive's newest verified checkpoint."""
    src = tmp_path / "run"
    src.mkdir()
    four = os.urandom(3000)
    (src / "epoch_004.pt").write_bytes(four)
    (src / "epoch_004.json").write_bytes(sidecar_json(4, four))
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    return src, {"epoch_004.pt": [md5(four)], "epoch_004.json": [md5(sidecar_json(4, four))]}


def test_push_delete_removes_a_lone_checkpoint_the_store_has_held_a_day(emulator, env, tmp_path):
    src, pair = _pushed(tmp_path)
    five, six = os.urandom(3000), os.urandom(3000)
    crashed = emulator.add_file("runs/a/epoch_005.pt", five)   # its sidecar never came
    emulator.add_file("runs/a/epoch_006.pt", six)              # on its way now
    # (epoch_004 pair: dated before it, as it reached Drive first)
    for name in ("epoch_004.pt", "epoch_004.json"):
        held_since(emulator, emulator.find(f"runs/a/{name}")["id"], time.time() - 3 * DAY)
    held_since(emulator, crashed, time.time() - 2 * DAY)
    code, _, err = run("-v", "push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {**pair, "epoch_006.pt": [md5(six)]}, err
    assert ("epoch_005.pt: no sidecar beside it on the store, which has held it 48 h: no "
            "longer kept as one whose sidecar may be on its way") in err, err


def test_one_old_by_its_dates_alone_waits_a_day_from_its_first_sighting(emulator, env, tmp_path):
    """Dates a client may set (rclone -M): old by them but never seen, it stays, and the
    push writes its first-seen mark; once that mark is a day old, the next --delete
    removes it."""
    src, pair = _pushed(tmp_path)
    five = os.urandom(3000)
    crashed = emulator.add_file("runs/a/epoch_005.pt", five)
    for name in ("epoch_004.pt", "epoch_004.json"):
        held_since(emulator, emulator.find(f"runs/a/{name}")["id"], time.time() - 3 * DAY)
    held_since(emulator, crashed, time.time() - 2 * DAY, seen=False)
    code, _, err = run("push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {**pair, "epoch_005.pt": [md5(five)]}, err
    props = {p["key"] for p in emulator.store.get(crashed).get("properties") or []}
    assert "drivestage-seen" in props
    held_since(emulator, crashed, time.time() - 2 * DAY)   # (a day and more since)
    code, _, err = run("push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == pair, err
