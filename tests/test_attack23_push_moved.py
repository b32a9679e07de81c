"""attack23drive: push23's moved-away rule (a file the user moved out of DEST is left alone;
one a dedupe moved into the folder the DEST path leads to is followed) where the path leads
to two folders of one name."""
from __future__ import annotations

import _cli
from _envs import env_local_retries  # noqa: F401  (the env fixture)


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


def test_a_sidecar_kept_with_its_renamed_checkpoint_blames_no_other_machine(emulator, env):
    """prune: the user renamed epoch_001.pt to keep it; the listing still lags when prune
    lists the folder again for the sidecars. The sidecar stayed (push23), but with the
    warning `kept the sidecar epoch_001.json: a copy of its checkpoint arrived since the
    plan (another machine pushing it?)`: none did. The store left its checkpoint alone:
    that decides first, and the checkpoint's own warning is the one line."""
    from _checkpoints import md5, sidecar_json
    from test_push23_sidecars import FOLDER, _live, _rename, _seed

    data = _seed(emulator, {1: 3000, 2: 3000, 3: 3000})
    emulator.faults.lag_listing(updated=5)
    _rename(emulator, "epoch_001.pt", "keep_me.pt")
    code, _, err = _cli.run("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert "another machine" not in err, err
    assert err.count("was renamed 'keep_me.pt' on Drive since it was listed; not deleted") == 1
    emulator.faults.clear()
    assert _live(emulator) == {
        "keep_me.pt": [md5(data[1])], "epoch_001.json": [md5(sidecar_json(1, data[1]))],
        "epoch_003.pt": [md5(data[3])], "epoch_003.json": [md5(sidecar_json(3, data[3]))]}, err
