"""prune24: a push that prunes for room (push_room) and the store leaves a checkpoint alone
(renamed or moved on Drive since the listing) says so once: the retention after the
uploads does not ask about it again (it warned a second time), and its sidecar stays."""
from __future__ import annotations

import os

import pytest

import _cli
from _checkpoints import md5, sidecar_json
from _envs import env  # noqa: F401  (a fixture)

FOLDER = "Models/logs"


def _live(emu) -> dict[str, str]:
    top = emu.find(FOLDER)["id"]
    return {f["title"]: f["md5Checksum"] for f in emu.files()
            if not f["labels"]["trashed"] and any(p["id"] == top for p in f["parents"])
            and "md5Checksum" in f}


@pytest.mark.parametrize("change", ["rename", "move"])
def test_a_checkpoint_a_push_left_alone_while_pruning_for_room_is_warned_about_once(
        emulator, env, tmp_path, change):
    data = {e: os.urandom(size) for e, size in ((1, 6000), (2, 3000), (3, 3000))}
    for e, d in data.items():
        emulator.add_file(f"{FOLDER}/epoch_{e:03d}.pt", d)
        emulator.add_file(f"{FOLDER}/epoch_{e:03d}.json", sidecar_json(e, d))
    keep = emulator.add_folder("Models/keep")
    used = sum(len(d) + len(sidecar_json(e, d)) for e, d in data.items())
    emulator.quota_bytes = emulator.store.quota_bytes = used + 1500
    emulator.faults.lag_listing(updated=5)
    first = emulator.find(f"{FOLDER}/epoch_001.pt")["id"]
    if change == "move":
        emulator.store.update_meta(first, {}, add_parents=[keep],
                                   remove_parents=[emulator.find(FOLDER)["id"]])
    else:
        emulator.store.update_meta(first, {"title": "keep_me.pt"})
    src = tmp_path / "run"
    src.mkdir()
    new = os.urandom(4000)
    (src / "epoch_004.pt").write_bytes(new)
    (src / "epoch_004.json").write_bytes(sidecar_json(4, new))
    code, _, err = _cli.run("push", str(src), f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert "pruning first" in err
    assert err.count("epoch_001.pt was") == 1, err  # renamed … / moved …; not deleted
    assert ", 4 pruned" in err, err
    emulator.faults.clear()
    live = _live(emulator)
    assert live.pop("epoch_001.json") == md5(sidecar_json(1, data[1]))  # its sidecar stays
    if change == "rename":
        assert live.pop("keep_me.pt") == md5(data[1])
    assert live == {"epoch_004.pt": md5(new), "epoch_004.json": md5(sidecar_json(4, new))}
    assert emulator.read_bytes(first) == data[1]
