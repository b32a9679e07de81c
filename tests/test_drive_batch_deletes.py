"""The files.get before each deletion, read in Drive batches (drive/store_deletes.py,
drive/batches.py): a prune of N files costs about N/100 batch requests of checks (and as
many of deletes: tests/test_prune24_batch_deletes.py), not 2N requests; each call's own answer is acted on as a lone files.get's would be (a 404 is
gone, a rate limit or 5xx retried, a rename since the listing left alone)."""
from __future__ import annotations

import pytest

import _cli
from _envs import env  # noqa: F401  (a fixture)


def _seed(emulator, n: int) -> list[str]:
    return [emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", b"w" * i) for i in range(1, n + 1)]


def _live(emulator) -> set[str]:
    rec = emulator.find("Models/logs")
    return {c["title"] for c in emulator.store.children(rec["id"]) if not c.get("trashed")}


def _deletes_of(emulator, fid: str) -> int:
    return sum(1 for r in emulator.requests
               if r.kind in ("files.delete", "files.trash") and fid in r.path)


def test_a_prune_of_n_files_reads_them_in_batches_of_100(emulator, env):
    n = 201
    ids = _seed(emulator, n)
    emulator.clear_requests()
    _cli.ok("prune", "drive:Models/logs", "--keep-last", "1")
    assert _live(emulator) == {f"epoch_{n:03d}.pt"}
    round_trips = [r for r in emulator.requests if not r.in_batch]
    batches = [r for r in round_trips if r.kind == "batch"]
    # 100 checks then their 100 deletes, at a time (prune24: the deletes in batches too);
    # the kept epoch_201.pt is read with the first 100 checks, in a batch of its own
    # (attack25: over 100 calls).
    assert len(batches) == 5 and all(r.status == 200 for r in batches)
    calls = emulator.api_calls()
    assert calls["files.delete"] == n - 1 and calls["files.get"] >= n - 1  # each call counts
    assert all(_deletes_of(emulator, fid) == 1 for fid in ids[:-1])
    # Before: one files.get and one delete per file (2N); now N/100 batches of each.
    assert len(round_trips) <= 5 + 8, calls
    assert len([r for r in round_trips if r.kind == "files.get"]) <= 3


def test_a_call_answering_a_rate_limit_or_500_is_retried_and_deleted_once(emulator, env):
    ids = _seed(emulator, 6)
    emulator.faults.inject("GET", ids[1], status=403, reason="rateLimitExceeded")
    emulator.faults.inject("GET", ids[3], status=500)
    emulator.clear_requests()
    _cli.ok("prune", "drive:Models/logs", "--keep-last", "1")
    assert _live(emulator) == {"epoch_006.pt"}
    assert [_deletes_of(emulator, fid) for fid in ids] == [1, 1, 1, 1, 1, 0]
    batches = [r for r in emulator.requests if r.kind == "batch"]
    assert len(batches) == 3  # the second holds only the two calls that failed; the deletes
    parts = [r for r in emulator.requests if r.in_batch and r.kind == "files.get"]
    # (The last 200 of the first batch: the kept epoch_006.pt, attack25.)
    assert [r.status for r in parts] == [200, 403, 200, 500, 200, 200, 200, 200]


def test_a_call_answering_404_is_gone_not_deleted_again(emulator, env):
    ids = _seed(emulator, 4)
    emulator.faults.lag_listing(deleted=5)
    emulator.store.delete(ids[1])  # another machine's prune; the listing still shows it
    emulator.clear_requests()
    _cli.ok("prune", "drive:Models/logs", "--keep-last", "1")
    assert _live(emulator) == {"epoch_004.pt"}
    assert [_deletes_of(emulator, fid) for fid in ids] == [1, 0, 1, 0]
    # (The checks, the kept epoch_004.pt's (attack25), then the deletes.)
    assert [r.status for r in emulator.requests if r.in_batch] == [200, 404, 200, 200, 204, 204]


def test_an_item_renamed_since_the_listing_is_left_alone_and_said_so(emulator, env):
    ids = _seed(emulator, 4)
    emulator.faults.lag_listing(updated=5)
    emulator.store.update_meta(ids[1], {"title": "keep_me.pt"})
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "epoch_002.pt was renamed 'keep_me.pt' on Drive since it was listed; not deleted" in err
    assert _live(emulator) == {"epoch_004.pt", "keep_me.pt"}
    assert emulator.read_bytes(ids[1]) == b"ww"
    assert [_deletes_of(emulator, fid) for fid in ids] == [1, 0, 1, 0]


def test_a_call_that_keeps_failing_stops_after_the_attempts_and_deletes_nothing_more(
        emulator, env, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    ids = _seed(emulator, 4)
    emulator.faults.inject("GET", ids[0], status=503, times=None)
    emulator.clear_requests()
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 1 and "still failing after 3 attempts" in err, err
    assert "Traceback" not in err
    assert _deletes_of(emulator, ids[0]) == 0
    assert len([r for r in emulator.requests if r.kind == "batch"]) == 3
    assert "epoch_001.pt" in _live(emulator)


def test_a_failed_batch_request_is_sent_again_whole(emulator, env):
    ids = _seed(emulator, 5)
    emulator.faults.inject("POST", r"/batch/", status=503)
    emulator.clear_requests()
    _cli.ok("prune", "drive:Models/logs", "--keep-last", "1")
    assert _live(emulator) == {"epoch_005.pt"}
    assert [_deletes_of(emulator, fid) for fid in ids] == [1, 1, 1, 1, 0]
    assert [r.status for r in emulator.requests if r.kind == "batch"] == [503, 200, 200]


def test_answers_read_ahead_too_long_ago_are_read_again_in_a_batch(emulator, env,
                                                                  monkeypatch):
    """A batch of checks that took longer than FRESH_FOR (its retries): read again in a
    batch; that one slow too (here: every time), each item is read alone before the batch
    of deletes."""
    from drivestage.drive import store_deletes

    monkeypatch.setattr(store_deletes, "FRESH_FOR", -1.0)
    ids = _seed(emulator, 4)
    emulator.clear_requests()
    _cli.ok("prune", "drive:Models/logs", "--keep-last", "1")
    assert _live(emulator) == {"epoch_004.pt"}
    assert [_deletes_of(emulator, fid) for fid in ids] == [1, 1, 1, 0]
    parts = [r.path.rsplit("/", 1)[1] for r in emulator.requests
             if r.in_batch and r.kind == "files.get"]
    assert parts == ids * 2  # (with the kept epoch_004.pt, attack25)
    lone = [r.path.rsplit("/", 1)[1] for r in emulator.requests
            if r.kind == "files.get" and not r.in_batch]
    assert lone == ids[3:] + ids[:3]  # (the kept one first: it decides for the rest)


def test_push_delete_reads_its_checks_in_a_batch(emulator, env, tmp_path):
    ids = _seed(emulator, 5)
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_005.pt").write_bytes(b"w" * 5)
    emulator.clear_requests()
    _cli.ok("push", str(src), "drive:Models/logs", "--delete")
    assert _live(emulator) == {"epoch_005.pt"}
    assert [_deletes_of(emulator, fid) for fid in ids] == [1, 1, 1, 1, 0]
    assert len([r for r in emulator.requests if r.kind == "batch"]) == 2  # checks, trashes


def test_a_calls_error_that_repeats_the_token_is_told_without_it(emulator, env):
    """A part's error body is read as a lone answer's is: a server repeating the request's
    token in its message does not get it printed (AuthorizedHttp redacts lone answers)."""
    ids = _seed(emulator, 3)
    emulator.faults.inject("GET", ids[0], status=403, reason="forbidden",
                           message="no access for Bearer test-token", times=None)
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 1 and "no access for Bearer" in err, err
    assert "test-token" not in err
    assert _deletes_of(emulator, ids[0]) == 0


@pytest.mark.parametrize("refusal", [{"status": 404}, {"status": 400},
                                     {"status": 200, "body": "{}",
                                      "content_type": "application/json"}])
def test_a_server_without_batches_gets_a_files_get_per_item(emulator, env, refusal):
    """A Drive look-alike (a proxy, an older emulator) that has no batch endpoint: its 404
    was taken as every item's 404, and the prune reported each file "already deleted" and
    deleted none. Each item is read alone instead, as before batches."""
    ids = _seed(emulator, 4)
    emulator.faults.inject("POST", r"/batch/", times=None, **refusal)
    emulator.clear_requests()
    _cli.ok("prune", "drive:Models/logs", "--keep-last", "1")
    assert _live(emulator) == {"epoch_004.pt"}
    assert [_deletes_of(emulator, fid) for fid in ids] == [1, 1, 1, 0]
    assert len([r for r in emulator.requests if r.kind == "batch"]) == 1  # tried once a run
    # (The kept epoch_004.pt is read too, attack25.)
    assert len([r for r in emulator.requests if r.kind == "files.get"]) == 4
