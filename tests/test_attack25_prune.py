"""attack25: a prune's deletions against a store that changed since the listing the plan was
made from. Drive's listings lag (the emulator's ``lag_listing``) while files.get is current:
an item given other bytes under the same id since the listing is not the item the plan
meant, and is left alone (docs/troubleshooting.md, ``on Drive since it was listed; not
deleted``), as one renamed or moved away is."""
from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest

import _cli
from _checkpoints import md5, sidecar_json
from _envs import env  # noqa: F401  (a fixture)


def _live(emulator) -> dict[str, str]:
    rec = emulator.find("Models/logs")
    return {c["title"]: c["id"] for c in emulator.store.children(rec["id"])
            if not c.get("trashed")}


def _seed(emulator, n: int = 3) -> dict[str, str]:
    """epoch_001..n.pt with sidecars vouching for them (all verified)."""
    ids = {}
    for i in range(1, n + 1):
        data = bytes([i]) * 100
        ids[f"epoch_{i:03d}.pt"] = emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", data)
        ids[f"epoch_{i:03d}.json"] = emulator.add_file(f"Models/logs/epoch_{i:03d}.json",
                                                       sidecar_json(i, data))
    return ids


def _put(emulator, fid: str, data: bytes) -> None:
    """Another client's in-place update of ``fid``'s bytes (same id, a new revision)."""
    u = urlsplit(emulator.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("PUT", f"/upload/drive/v2/files/{fid}?uploadType=media", body=data,
                 headers={"Authorization": "Bearer test-token"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 200, resp.status


def test_a_checkpoint_given_other_bytes_since_the_listing_is_not_pruned(emulator, env):
    """epoch_001.pt gets new bytes under its id (Drive's "upload a new version", another
    machine's in-place update) after the listing the plan reads; the listing still shows
    the old md5, which its sidecar vouches for. Before: prune --keep-last 1 deleted it."""
    ids = _seed(emulator)
    emulator.faults.lag_listing(updated=5)
    _put(emulator, ids["epoch_001.pt"], b"new bytes")
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    live = _live(emulator)
    assert live.get("epoch_001.pt") == ids["epoch_001.pt"], live
    assert emulator.read_bytes(ids["epoch_001.pt"]) == b"new bytes"
    assert "given other content" in err, err
    assert "epoch_001.json" in live  # its sidecar stays with it (left alone)
    assert "epoch_002.pt" not in live and "epoch_002.json" not in live
    assert {"epoch_003.pt", "epoch_003.json"} <= set(live)


def test_a_sidecar_updated_in_place_for_a_new_copy_of_its_checkpoint_is_not_pruned(
        emulator, env, tmp_path):
    """Machine A pushes with --keep-last 1 a folder it pushed before; meanwhile machine B
    replaced epoch_001.pt (a new file) and updated epoch_001.json in place to vouch for it.
    A's listing lags (no new copy, the sidecar's old md5, which A's local copy has): its
    retention deletes the old epoch_001.pt, then the sidecar (the folder listed again still
    shows no new copy). Before: B's new epoch_001.pt was left without its sidecar (its
    epoch, metrics and verification)."""
    src = tmp_path / "run"
    src.mkdir()
    for i in range(1, 4):
        data = bytes([i]) * 100
        (src / f"epoch_{i:03d}.pt").write_bytes(data)
        (src / f"epoch_{i:03d}.json").write_bytes(sidecar_json(i, data))
    _cli.ok("push", str(src), "drive:Models/logs")
    ids = _live(emulator)
    emulator.faults.lag_listing(created=20, updated=20)
    new = b"a new epoch_001"
    new_id = emulator.add_file("Models/logs/epoch_001.pt", new)
    _put(emulator, ids["epoch_001.json"], sidecar_json(1, new))
    code, _, err = _cli.run("push", str(src), "drive:Models/logs", "--keep-last", "1")
    rec = emulator.find("Models/logs")
    live = sorted((c["title"], c["id"]) for c in emulator.store.children(rec["id"])
                  if not c.get("trashed"))
    assert ("epoch_001.pt", new_id) in live, (live, err)
    assert ("epoch_001.json", ids["epoch_001.json"]) in live, (live, err)
    assert ("epoch_001.pt", ids["epoch_001.pt"]) not in live, (live, err)
    assert "given other content" in err, err


def test_the_rerun_of_a_prune_killed_between_checkpoints_and_sidecars_retires_them(
        emulator, env):
    """A prune killed after its batch of checkpoint deletes, before the sidecars' (or whose
    sidecar deletes Drive refused): their sidecars stay without them. The rerun retires
    them as orphans (a newer checkpoint of their run is verified) and keeps the newest."""
    ids = _seed(emulator, 3)
    for name in ("epoch_001.pt", "epoch_002.pt"):
        emulator.store.delete(ids[name])
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert set(_live(emulator)) == {"epoch_003.pt", "epoch_003.json"}, err


def test_a_listing_restarted_after_rejected_page_tokens_counts_each_checkpoint_once(
        emulator, env):
    """Short pages, and Drive rejects the page token three times (the most a listing starts
    over): a restart that kept the pages read before it would count checkpoints twice and
    keep_last would keep fewer than asked; one that lost some would plan on a short folder.
    Each restart lists from page one afresh: keep_last 2 keeps exactly the newest two."""
    ids = _seed(emulator, 5)
    emulator.faults.short_pages(2)
    emulator.faults.expire_page_tokens(3)
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "2")
    assert code == 0, err
    assert _live(emulator) == {n: ids[n] for n in ("epoch_004.pt", "epoch_004.json",
                                                   "epoch_005.pt", "epoch_005.json")}
    tokens = [r for r in emulator.requests if r.kind == "files.list" and "pageToken" in r.query]
    assert any(r.status == 400 for r in tokens)


def test_a_listing_whose_page_token_is_always_rejected_prunes_nothing(emulator, env):
    """A server that rejects every page token (a broken proxy): the listing gives up after
    its bounded restarts and the prune deletes nothing on the part it saw (exit 1)."""
    ids = _seed(emulator, 5)
    emulator.faults.short_pages(2)
    emulator.faults.expire_page_tokens(None)
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 1, err
    assert "rejected its page token" in err
    assert _live(emulator) == ids
    assert not [r for r in emulator.requests if r.kind in ("files.delete", "files.trash")]


@pytest.mark.parametrize("how", ["trashed", "deleted", "renamed"])
def test_the_newest_checkpoint_gone_since_a_lagging_listing_leaves_the_others(emulator, env,
                                                                              how):
    """The user trashes (deletes, renames) epoch_004.pt, the newest, then prunes at once;
    Drive's listing still shows it. The plan kept it and deleted every other checkpoint:
    epochs 1-3 and their sidecars went, and no checkpoint was left in the folder. What the
    plan keeps is read with the checks (the same batch): one not as listed, nothing goes."""
    ids = _seed(emulator, 4)
    emulator.faults.lag_listing(updated=5, deleted=5)
    if how == "trashed":
        emulator.store.set_trashed(ids["epoch_004.pt"], True)
    elif how == "deleted":
        emulator.store.delete(ids["epoch_004.pt"])
    else:
        emulator.store.update_meta(ids["epoch_004.pt"], {"title": "diverged.pt"})
    emulator.clear_requests()
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "epoch_004.pt, which the plan keeps, was" in err, err
    assert "nothing deleted" in err
    live = _live(emulator)
    assert {f"epoch_{i:03d}.{s}" for i in (1, 2, 3) for s in ("pt", "json")} <= set(live), live
    assert not [r for r in emulator.requests if r.kind in ("files.delete", "files.trash")]
    # The kept items were read in the batch of checks: no round trip more.
    assert not [r for r in emulator.requests if r.kind == "files.get" and not r.in_batch]
