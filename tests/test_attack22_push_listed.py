"""attack22push: the files.get before each deletion (provenance.check_as_listed) against
what real Drive does: its cost for a large prune, and an item with several parents."""
from __future__ import annotations

import pytest

import _cli
from _envs import env_local_retries  # noqa: F401  (the env fixture)


def _live(emulator, folder: str) -> set[str]:
    rec = emulator.find(folder)
    return {c["title"] for c in emulator.store.children(rec["id"]) if not c.get("trashed")}


def test_the_check_before_each_deletion_costs_one_files_get(emulator, env):
    """Measured: a prune of N files costs one files.get and one delete per file (and a
    listing or two), not more: 1,000 files, about 2,000 requests."""
    n = 40
    for i in range(1, n + 1):
        emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", b"w" * i)
    emulator.clear_requests()
    _cli.ok("prune", "drive:Models/logs", "--keep-last", "1")
    assert _live(emulator, "Models/logs") == {f"epoch_{n:03d}.pt"}
    calls = emulator.api_calls()
    deletes = calls.get("files.delete", 0) + calls.get("files.trash", 0)
    assert deletes == n - 1, calls
    assert calls.get("files.get", 0) <= n - 1 + 5, calls
    assert sum(calls.values()) <= 2 * (n - 1) + 10, calls


def test_an_item_with_two_parents_taken_out_of_dest_is_not_deleted_by_push_delete(
        emulator, env, tmp_path):
    """An item in Models/logs and in Models/keep (Drive's older items may have several
    parents; parents[0] is Models/keep). The user takes it out of Models/logs to keep it
    only in Models/keep; the listing lags. push --delete checked it was still in
    parents[0], not in the folder it was listed in, and deleted the file the user kept."""
    keep = emulator.add_folder("Models/keep")
    logs = emulator.add_folder("Models/logs")
    fid = emulator.add_file("Models/keep/old.pt", b"keep me")
    emulator.store.update_meta(fid, {}, add_parents=[logs])
    assert emulator.store.get(fid)["parents"][0] == keep
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    emulator.faults.lag_listing(updated=5)
    emulator.store.update_meta(fid, {}, remove_parents=[logs])
    code, out, err = _cli.run("push", str(src), "drive:Models/logs", "--delete")
    assert "Traceback" not in err
    assert not emulator.store.get(fid)["trashed"], err
    assert emulator.read_bytes(fid) == b"keep me"
    assert "old.pt" in _live(emulator, "Models/keep")


def test_an_item_with_two_parents_still_in_dest_is_deleted_by_push_delete(emulator, env,
                                                                           tmp_path):
    """The other way round (a false positive before): taken out of its first parent
    (Models/keep) but still in Models/logs, where it was listed, it was left alone as
    "moved into another folder" while it is exactly where --delete found it."""
    keep = emulator.add_folder("Models/keep")
    logs = emulator.add_folder("Models/logs")
    fid = emulator.add_file("Models/keep/old.pt", b"not local")
    emulator.store.update_meta(fid, {}, add_parents=[logs])
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    emulator.faults.lag_listing(updated=5)
    emulator.store.update_meta(fid, {}, remove_parents=[keep])
    code, out, err = _cli.run("push", str(src), "drive:Models/logs", "--delete")
    assert code == 0, err
    assert emulator.store.get(fid)["trashed"], err
    assert "1 deleted (not local)" in err


@pytest.mark.parametrize("how", ["renamed", "trashed"])
def test_a_log_renamed_or_trashed_since_the_listing_is_not_overwritten(emulator, env,
                                                                       tmp_path, how):
    """The user renames results.csv to keep_run1.csv on Drive to keep it (or trashes it);
    the listing lags. The push updated it in place by id: the kept copy got the new bytes
    and was renamed back to results.csv (the trashed one took the new bytes into the trash,
    and DEST had no results.csv). A move is left alone: see ``DriveStore._as_listed``."""
    fid = emulator.add_file("Models/logs/results.csv", b"epoch\n1\n")
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n2\n")
    emulator.faults.lag_listing(updated=5, deleted=5)
    if how == "renamed":
        emulator.store.update_meta(fid, {"title": "keep_run1.csv"})
    else:
        emulator.store.update_meta(fid, {"labels": {"trashed": True}})
    code, out, err = _cli.run("push", str(src), "drive:Models/logs")
    assert "Traceback" not in err
    rec = emulator.store.get(fid)
    assert emulator.read_bytes(fid) == b"epoch\n1\n", err
    assert rec["title"] == ("keep_run1.csv" if how == "renamed" else "results.csv")
    assert code == 0, err
    assert f"was {how}" in err and "since it was listed; left as it is, sent as a new file" in err
    logs = emulator.find("Models/logs")["id"]
    new = [c for c in emulator.store.children(logs)
           if c["title"] == "results.csv" and not c.get("trashed")]
    assert [emulator.read_bytes(c["id"]) for c in new] == [b"epoch\n1\n2\n"]


def test_an_item_renamed_between_two_pages_of_a_listing_stops_nothing(emulator, proxy,
                                                                      local_state,
                                                                      monkeypatch):
    """The user renames epoch_001.pt to keep_me.pt while prune lists the folder: a long
    listing's first page showed it under its old name, the next under its new one (one id,
    two names, once). Before: prune stopped with "the server answered for another item ...
    Drive never does that", exit 1. A second listing is consistent: it goes on, and the
    renamed file stays."""
    import json
    import re

    from _proxy import Reply

    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    ids = {f"epoch_{i:03d}.pt": emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", b"w" * i)
           for i in (1, 2, 3)}
    emulator.store.update_meta(ids["epoch_001.pt"], {"title": "keep_me.pt"})
    old = dict(emulator.store.get(ids["epoch_001.pt"]), title="epoch_001.pt")
    old = {k: v for k, v in old.items() if not k.startswith("_")}
    logs = emulator.find("Models/logs")["id"]

    def both_names(status, headers, body):
        obj = json.loads(body)
        if isinstance(obj.get("items"), list):
            match = [it for it in obj["items"] if it.get("id") == old["id"]]
            obj["items"].append(dict(match[0], title="epoch_001.pt") if match else old)
        data = json.dumps(obj).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(data))
        return Reply(status, out, [data])

    proxy.on("GET", rf"^/drive/v2/files\?.*%27{re.escape(logs)}%27", both_names, times=1)
    code, out, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert _live(emulator, "Models/logs") == {"keep_me.pt", "epoch_003.pt"}
