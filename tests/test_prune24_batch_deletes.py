"""The deletes of a prune / retention / push --delete pass go in Drive batches too
(drive/store_deletes.py ``delete_many``): a prune of N files costs about N/100 batches of
checks + N/100 batches of deletes, not N deletes; each delete's own outcome is acted on as
a lone delete's would be (gone, refused, moved to the trash instead, retried)."""
from __future__ import annotations

import _cli
from _checkpoints import sidecar_json
from _envs import env  # noqa: F401  (a fixture)
from test_drive_batch_deletes import _live, _seed


def _trashed(emulator) -> set[str]:
    rec = emulator.find("Models/logs")
    return {c["title"] for c in emulator.store.children(rec["id"]) if c.get("trashed")}


def _deletes_of(emulator, fid: str) -> int:
    return sum(1 for r in emulator.requests
               if r.kind in ("files.delete", "files.trash") and fid in r.path
               and r.status in (200, 204))


def test_a_prune_of_n_files_deletes_them_in_batches_of_100(emulator, env):
    n = 201
    ids = _seed(emulator, n)
    emulator.clear_requests()
    _cli.ok("prune", "drive:Models/logs", "--keep-last", "1")
    assert _live(emulator) == {f"epoch_{n:03d}.pt"}
    assert all(_deletes_of(emulator, fid) == 1 for fid in ids[:-1])
    assert _deletes_of(emulator, ids[-1]) == 0
    calls = emulator.api_calls()
    assert calls["files.delete"] == n - 1  # Drive counts each call all the same
    round_trips = [r for r in emulator.requests if not r.in_batch]
    # 2 batches of checks + 2 of deletes + the listing (and the about/folder lookups); the
    # kept epoch_201.pt is read with the first checks, in a batch of its own (attack25).
    assert len([r for r in round_trips if r.kind == "batch"]) == 5
    assert not [r for r in round_trips if r.kind in ("files.delete", "files.get")]
    assert len(round_trips) <= 10, [r.kind for r in round_trips]


def test_a_delete_answering_429_or_500_is_retried_alone_and_done_once(emulator, env):
    ids = _seed(emulator, 6)
    emulator.faults.inject("DELETE", ids[1], status=429)
    emulator.faults.inject("DELETE", ids[3], status=500)
    emulator.clear_requests()
    _cli.ok("prune", "drive:Models/logs", "--keep-last", "1")
    assert _live(emulator) == {"epoch_006.pt"}
    assert [_deletes_of(emulator, fid) for fid in ids] == [1, 1, 1, 1, 1, 0]
    deletes = [r for r in emulator.requests if r.kind == "files.delete"]
    assert [r.status for r in deletes] == [204, 429, 204, 500, 204, 204, 204]
    assert all(r.in_batch for r in deletes)  # the retry: a batch of the two calls


def test_a_delete_that_404s_is_already_gone(emulator, env):
    ids = _seed(emulator, 4)
    emulator.faults.inject("DELETE", ids[1], status=404)
    emulator.clear_requests()
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert [_deletes_of(emulator, fid) for fid in ids] == [1, 0, 1, 0]


def test_a_refused_delete_goes_to_the_trash_one_warning(emulator, env):
    """A shared drive's Content manager: the permanent delete refused, the trash allowed
    (here: the emulator refuses two deletes). Both go to the trash, in one batch; one
    warning."""
    ids = _seed(emulator, 5)
    for fid in ids[1:3]:
        emulator.faults.inject("DELETE", fid, status=403, reason="insufficientFilePermissions")
    emulator.clear_requests()
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert _live(emulator) == {"epoch_005.pt"}
    assert _trashed(emulator) == {"epoch_002.pt", "epoch_003.pt"}
    assert err.count("could not be deleted permanently") == 1
    trashes = [r for r in emulator.requests if r.kind == "files.trash"]
    assert len(trashes) == 2 and all(r.in_batch for r in trashes)


def test_a_delete_refused_for_good_fails_the_prune_after_its_batch_and_keeps_its_sidecar(
        emulator, env):
    """Delete and trash refused (not our file to delete): the prune exits 1 with Drive's
    reason; the rest of that batch is deleted, and the refused checkpoint's sidecar stays
    (a sidecar goes only after its checkpoint)."""
    ids = _seed(emulator, 4)
    side = emulator.add_file("Models/logs/epoch_002.json", sidecar_json(2, b"ww"))
    emulator.add_file("Models/logs/epoch_004.json", sidecar_json(4, b"wwww"))
    for method in ("DELETE", "POST"):
        emulator.faults.inject(method, ids[1], status=403, reason="insufficientFilePermissions",
                               times=None)
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 1, err
    assert "epoch_002.pt" in err and "Traceback" not in err
    # (epoch_003.pt, newer than epoch_002.pt and not verified, is the plan's to keep.)
    assert _live(emulator) == {"epoch_002.pt", "epoch_002.json", "epoch_003.pt",
                               "epoch_004.pt", "epoch_004.json"}
    assert _deletes_of(emulator, ids[0]) == 1
    assert _deletes_of(emulator, side) == 0


def test_push_delete_deletes_in_one_batch(emulator, env, tmp_path):
    ids = _seed(emulator, 5)
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_005.pt").write_bytes(b"w" * 5)
    emulator.clear_requests()
    _cli.ok("push", str(src), "drive:Models/logs", "--delete")
    assert _live(emulator) == {"epoch_005.pt"}
    assert [_deletes_of(emulator, fid) for fid in ids] == [1, 1, 1, 1, 0]
    removals = [r for r in emulator.requests if r.kind in ("files.delete", "files.trash")]
    assert len(removals) == 4 and all(r.in_batch for r in removals)
