"""attack23drive: push23's moved-away rule (a file the user moved out of DEST is left alone;
one a dedupe moved into the folder the DEST path leads to is followed) where the path leads
to two folders of one name."""
from __future__ import annotations

import pytest

import _cli


@pytest.fixture
def env(local_state, drive_env):
    return local_state


def _bytes_in(emulator, folder_id: str, name: str) -> list[bytes]:
    return [emulator.read_bytes(c["id"]) for c in emulator.store.children(folder_id)
            if c["title"] == name and not c.get("trashed")]


def test_a_log_moved_into_a_newer_folder_of_the_same_name_is_left_alone(emulator, env,
                                                                       tmp_path):
    """Two machines made Models/logs at once: two folders of that name, every push writes
    into the oldest. The user moves results.csv from it into the newer one to keep run 1's
    log (the listing lags). That folder is at the DEST path too, so the push took the move
    for a dedupe's and updated the file there: run 1's log was overwritten. A dedupe moves
    a file only into an older folder than its own (the oldest): this move is the user's."""
    models = emulator.add_folder("Models")
    ours = emulator.add_folder("Models/logs")          # the oldest: pushes write here
    newer = emulator.add_folder("Elsewhere/logs")
    emulator.store.update_meta(newer, {}, add_parents=[models],
                               remove_parents=[emulator.find("Elsewhere")["id"]])
    emulator.store.update(newer, created=emulator.store.get(ours)["created"] + 60)
    fid = emulator.add_file("Models/logs/results.csv", b"epoch\n1\n")
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n2\n")
    emulator.faults.lag_listing(updated=5)
    emulator.store.update_meta(fid, {}, add_parents=[newer], remove_parents=[ours])
    code, _, err = _cli.run("push", str(src), "drive:Models/logs")
    assert code == 0, err
    assert emulator.read_bytes(fid) == b"epoch\n1\n", err      # the kept copy is as it was
    assert "results.csv was moved into another folder" in err, err
    assert _bytes_in(emulator, ours, "results.csv") == [b"epoch\n1\n2\n"]
    assert _bytes_in(emulator, newer, "results.csv") == [b"epoch\n1\n"]
