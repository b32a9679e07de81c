"""Push retention's read of what its plan keeps (push_kept25) against what the push itself
removed: the same-named copies of an unchanged checkpoint it repairs. A push killed between
sending a new copy of `epoch_002.pt` and its sidecar left both copies on Drive and the old
sidecar; the next push finds the new copy equal to the local file, sends the sidecar and
removes the old copy. The plan (made on the listing, where the old sidecar still vouched for
the old copy) kept that old copy, read it gone, and deleted nothing, saying the kept
checkpoint "was deleted since it was listed": the push's own repair, not the user's."""
from __future__ import annotations

import _cli
from _checkpoints import sidecar_json
from _envs import env  # noqa: F401  (a fixture)


def _live(emulator) -> list:
    folder = "application/vnd.google-apps.folder"
    return sorted((f["title"], f["md5Checksum"]) for f in emulator.files()
                  if f["mimeType"] != folder and not f["labels"]["trashed"])


def test_a_push_prunes_past_the_old_copy_it_removed_itself(emulator, env, tmp_path):
    import hashlib

    one, old, new = b"\1" * 10, b"\2" * 10, b"\3" * 10
    emulator.add_file("Models/logs/epoch_001.pt", one)
    emulator.add_file("Models/logs/epoch_001.json", sidecar_json(1, one))
    emulator.add_file("Models/logs/epoch_002.pt", old)
    emulator.add_file("Models/logs/epoch_002.json", sidecar_json(2, old))
    emulator.add_file("Models/logs/epoch_002.pt", new)   # sent; killed before its sidecar
    src = tmp_path / "run"
    src.mkdir()
    (src / "epoch_002.pt").write_bytes(new)
    (src / "epoch_002.json").write_bytes(sidecar_json(2, new))
    code, _, err = _cli.run("push", str(src), "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "which the plan keeps" not in err, err
    side = sidecar_json(2, new)
    assert _live(emulator) == sorted([
        ("epoch_002.json", hashlib.md5(side).hexdigest()),
        ("epoch_002.pt", hashlib.md5(new).hexdigest())]), err


def test_the_copy_the_repair_kept_is_read_as_what_the_plan_keeps(emulator, env, tmp_path):
    """As above, but the user trashed the newer copy (the one equal to the local file) just
    before the push listed the folder, and the listing still shows it: the repair keeps it
    and removes the older one. Read as kept, it is in the trash: nothing is deleted, and
    epoch 1 (the only checkpoint left live) stays."""
    one, old, new = b"\1" * 10, b"\2" * 10, b"\3" * 10
    emulator.add_file("Models/logs/epoch_001.pt", one)
    emulator.add_file("Models/logs/epoch_001.json", sidecar_json(1, one))
    emulator.add_file("Models/logs/epoch_002.pt", old)
    emulator.add_file("Models/logs/epoch_002.json", sidecar_json(2, old))
    newer = emulator.add_file("Models/logs/epoch_002.pt", new)
    emulator.faults.lag_listing(deleted=5)
    emulator.store.set_trashed(newer, True)
    src = tmp_path / "run"
    src.mkdir()
    (src / "epoch_002.pt").write_bytes(new)
    (src / "epoch_002.json").write_bytes(sidecar_json(2, new))
    code, _, err = _cli.run("push", str(src), "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "epoch_002.pt, which the plan keeps, was moved to the trash" in err, err
    live = {n for n, _ in _live(emulator)}
    assert {"epoch_001.pt", "epoch_001.json"} <= live, err
