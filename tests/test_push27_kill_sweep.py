"""A `drivestage push` SIGKILLed at each request of a push that replaces a checkpoint, the
kill landing once Drive has done what the request asked but before its answer arrived (the
worst moment: the push never learns it). After each kill Drive still holds a `last.pt` its
`last.json` vouches for; a new process's push then leaves each name once, the new bytes,
vouched for: no duplicate, nothing lost, whatever the step (listing, ids, the checkpoint's
create and its bytes, the sidecar's update, the old copy's deletion).

Each kill is a new `python -m drivestage` process (forked with its imports done,
tests/_forkcli.py: a fresh interpreter cost 0.5 s to start; then each request up to the
k-th): the sweep takes every second request in CI's time (the 1st, 3rd, ...: the push's 21
requests put each change Drive sees, the two creates' and the update's bytes and the
deletion, at the 9th, 11th, 15th and 21st), about 10 s a case; every one of them with
DRIVESTAGE_TEST_SWEEP=all (about 20 s a case on a quiet machine)."""
from __future__ import annotations

import hashlib
import json
import os
import threading

import pytest

from _checkpoints import sidecar_json
from _forkcli import PIPE, cli_server
from _kill import sigkill_when
from _proxy import Proxy, Reply
from _sweep import every


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _live(emu) -> dict:
    out: dict = {}
    for f in emu.files():
        if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder"):
            out.setdefault(f["title"], []).append(f)
    return out


def _vouched(emu) -> bool:
    """Some last.json on Drive names the md5 of some last.pt there."""
    live = _live(emu)
    copies = {f["md5Checksum"] for f in live.get("last.pt", [])}
    return any(json.loads(emu.read_bytes(f["id"]))["md5"] in copies
               for f in live.get("last.json", []))


@pytest.fixture(scope="session")
def cli():
    """``python -m drivestage`` forked with its imports done (tests/_forkcli.py): a fresh
    interpreter per step cost 0.5 s (3 s on a loaded machine) of a step's 1 s (4 s)."""
    return cli_server()


@pytest.mark.parametrize("lag", [False, True], ids=["current", "lagging"])
def test_a_push_killed_at_each_request_leaves_a_vouched_checkpoint_and_no_duplicate(
        emulator_factory, tmp_path, fast_retries, monkeypatch, lag, cli):
    """``lagging``: the next process's listing does not show yet what the killed one made,
    changed or deleted (a mirror restarted at once); the push after it sees Drive as it is."""
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    v1, v2 = b"1" * 3000, b"2" * 4000
    k, step = 1 - every(2), every(2)
    while True:
        k += step
        emu = emulator_factory()
        state, src = tmp_path / f"state{k}", tmp_path / f"run{k}"
        monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(state))
        src.mkdir()
        (src / "last.pt").write_bytes(v1)
        (src / "last.json").write_bytes(sidecar_json(1, v1))
        push(str(src), (connect(api_root=emu.url, token="test-token"), "runs/a"), jobs=1)
        (src / "last.pt").write_bytes(v2)
        (src / "last.json").write_bytes(sidecar_json(2, v2))
        (src / "log.txt").write_bytes(b"epoch 2\n")
        if lag:   # what the child makes, changes or deletes from now on lags
            emu.faults.lag_listing(created=2, updated=2, deleted=2)
        seen, held, release = [0], threading.Event(), threading.Event()

        def kth(status: int, headers: dict, body: bytes) -> Reply:
            seen[0] += 1
            if seen[0] == k:
                held.set()
                release.wait(60)
            return Reply(status, headers, [body])
        with Proxy(emu.url) as proxy:
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                proxy.on(method, "", kth)
            env = dict(os.environ, DRIVESTAGE_API_ROOT=proxy.url,
                       DRIVESTAGE_TOKEN="test-token", DRIVESTAGE_STATE_DIR=str(state))
            child = cli.popen(["push", str(src), "drive:runs/a", "--jobs", "1"], env=env,
                              stdout=PIPE, stderr=PIPE)
            done = threading.Event()
            watcher = threading.Thread(target=lambda: (child.wait(), done.set()))
            watcher.start()
            while not (held.wait(0.05) or done.is_set()):
                pass
            try:
                if done.is_set() and not held.is_set():
                    out, err = child.communicate()
                    assert child.returncode == 0, err
                    break   # every request of the push was swept
                sigkill_when(child, lambda: True)
            finally:
                release.set()
                watcher.join(30)
        assert _vouched(emu), f"killed at request {k}: no last.pt its last.json vouches for"
        if lag:
            push(str(src), (connect(api_root=emu.url, token="test-token"), "runs/a"), jobs=1)
            assert _vouched(emu), f"killed at request {k}, then a lagging push: unvouched"
            emu.faults.lag_listing()
            store = connect(api_root=emu.url, token="test-token")
            for _ in range(2):   # (what lags is shown by the listings after)
                store.list(store.resolve("runs/a"))
        push(str(src), (connect(api_root=emu.url, token="test-token"), "runs/a"), jobs=1)
        live = _live(emu)
        got = {n: [f["md5Checksum"] for f in fs] for n, fs in live.items()}
        assert got == {"last.pt": [_md5(v2)], "last.json": [_md5(sidecar_json(2, v2))],
                       "log.txt": [_md5(b"epoch 2\n")]}, f"killed at request {k}: {got}"
        emu.stop()
    assert k > 15, k
