"""The create records (drivestage.create_ids) of the files a failed push pass did verify.

Records were marked verified only once every create of the pass had ended: a pass that failed
on one file (or stopped there) left the records of the files it had made and verified as
"create sent, never seen to end". The next process, whose listing did not show those files
yet (Drive's lag), sent their creates with the recorded ids, Drive answered 409, and a file
whose local copy had changed since was updated in place, as a lost create's file is. For a
checkpoint that is not named ``.pt``/``.pth``/``.ckpt`` (``weights.safetensors`` beside its
sidecar ``weights.json``), that overwrote the verified copy its sidecar on Drive vouched for
before the new sidecar was sent: a failure (or a kill) there left Drive with no checkpoint its
sidecar vouches for. Now a pass records what it verified when it ends, failed or not: the next
process makes the new bytes a new file beside the verified one."""
from __future__ import annotations

import hashlib
import json

import pytest

from _checkpoints import sidecar_json
from _proxy import Reply
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)
from test_attackpush26_ids import _live, _refused


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_a_failed_pass_s_verified_checkpoint_is_not_overwritten_by_the_next_process(
        emulator, proxy, local_state, fast_retries):
    from drivestage.create_ids import CreateIds
    from drivestage.drive import connect
    from drivestage.errors import DriveStageError
    from drivestage.upload_tree import push

    src = local_state / "run"
    src.mkdir()
    v1, v2 = b"one" * 100, b"two" * 100
    (src / "weights.safetensors").write_bytes(v1)
    (src / "weights.json").write_bytes(sidecar_json(1, v1))
    (src / "z.log").write_bytes(b"log")
    emulator.add_folder("runs")
    emulator.faults.lag_listing(created=3, titles=r"^weights")
    # Push 1 makes weights.safetensors, then z.log, whose answer the proxy turns into a
    # refusal (Drive made it: its answer is what is lost), then weights.json. It fails.
    creates = [0]

    def second_create_refused(status: int, headers: dict, body: bytes) -> Reply:
        creates[0] += 1
        return _refused(status, headers, body) if creates[0] == 2 else \
            Reply(status, headers, [body])
    rule = proxy.on("POST", r"^/upload/", second_create_refused)
    with pytest.raises(DriveStageError):
        push(str(src), "runs", store=connect(api_root=proxy.url, token="test-token"), jobs=1)
    proxy.rules.remove(rule)
    (first,) = _live(emulator, "weights.safetensors")
    (side,) = _live(emulator, "weights.json")
    assert json.loads(emulator.read_bytes(side["id"]))["md5"] == _md5(v1)
    verified = {v["id"]: v.get("md5") for v in CreateIds().recorded().values()}
    assert verified[first["id"]] == _md5(v1) and verified[side["id"]] is not None
    # The next save; the next process's listing does not show weights.* yet, and its
    # update of the sidecar is cut (refused, as by a kill).
    (src / "weights.safetensors").write_bytes(v2)
    (src / "weights.json").write_bytes(sidecar_json(2, v2))
    proxy.on("PUT", side["id"], _refused)
    try:
        push(str(src), "runs", store=connect(api_root=proxy.url, token="test-token"), jobs=1)
    except DriveStageError:
        pass
    copies = {f["id"]: f["md5Checksum"] for f in _live(emulator, "weights.safetensors")}
    assert copies[first["id"]] == _md5(v1)   # the copy its sidecar vouches for
    for f in _live(emulator, "weights.json"):
        assert json.loads(emulator.read_bytes(f["id"]))["md5"] in copies.values()
    # Listings current again (what lags shown by 3 listings): the next push leaves one copy
    # of each, the new ones.
    emulator.faults.lag_listing()
    proxy.rules.clear()
    store = connect(api_root=emulator.url, token="test-token")
    for _ in range(3):
        store.list(store.resolve("runs"))
    push(str(src), "runs", store=connect(api_root=proxy.url, token="test-token"), jobs=1)
    (last,) = _live(emulator, "weights.safetensors")
    assert emulator.read_bytes(last["id"]) == v2
    (side,) = _live(emulator, "weights.json")
    assert json.loads(emulator.read_bytes(side["id"]))["md5"] == _md5(v2)
    assert len(_live(emulator, "z.log")) == 1


def test_a_killed_pass_s_verified_checkpoint_is_not_overwritten_by_the_next_process(
        emulator, proxy, local_state, fast_retries):
    """A kill (SIGKILL: nothing runs at the end) after `a.safetensors` and its sidecar were
    verified, while the pass's last create was under way, left their records as "create
    sent, never seen to end". The next process, its listing lagging, took `a.safetensors`
    (a checkpoint: its sidecar is made beside it) for a lost create's file and updated it in
    place before the new sidecar was sent; cut there, no copy on Drive was the one its
    sidecar vouches for. A file whose sidecar the pass creates beside it is now never
    updated in place through its recorded id: the new bytes go to a new file."""
    import os
    import subprocess
    import sys
    import threading

    from drivestage.drive import connect
    from drivestage.errors import DriveStageError
    from drivestage.upload_tree import push

    from _kill import sigkill_when

    src = local_state / "run"
    src.mkdir()
    v1, v2 = b"one" * 100, b"two" * 100
    for stem in ("a", "b"):
        (src / f"{stem}.safetensors").write_bytes(v1)
        (src / f"{stem}.json").write_bytes(sidecar_json(1, v1))
    emulator.add_folder("runs")
    emulator.faults.lag_listing(created=3, titles=r"^[ab]\.")
    # The child's creates: a.safetensors, b.safetensors, a.json, then b.json, whose
    # request is held until the child is killed.
    creates, held, release = [0], threading.Event(), threading.Event()

    def hold_the_last(status: int, headers: dict, body: bytes) -> Reply:
        creates[0] += 1
        if creates[0] == 4:
            held.set()
            release.wait(60)
        return Reply(status, headers, [body])
    rule = proxy.on("POST", r"^/upload/", hold_the_last)
    env = dict(os.environ, DRIVESTAGE_API_ROOT=proxy.url, DRIVESTAGE_TOKEN="test-token")
    child = cli_server().popen(["push", str(src),
                                "drive:runs", "--jobs", "1"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        sigkill_when(child, held.is_set, "the push never sent its last create")
    finally:
        release.set()
    proxy.rules.remove(rule)
    (first,) = _live(emulator, "a.safetensors")
    (side,) = _live(emulator, "a.json")
    assert not _live(emulator, "b.json")
    # The next save; the next process's listing shows none of them yet, and its update of
    # a.json is cut (refused, as by a kill).
    (src / "a.safetensors").write_bytes(v2)
    (src / "a.json").write_bytes(sidecar_json(2, v2))
    proxy.on("PUT", side["id"], _refused)
    try:
        push(str(src), "runs", store=connect(api_root=proxy.url, token="test-token"), jobs=1)
    except DriveStageError:
        pass
    copies = {f["id"]: f["md5Checksum"] for f in _live(emulator, "a.safetensors")}
    assert copies[first["id"]] == _md5(v1)   # the copy its sidecar vouches for
    for f in _live(emulator, "a.json"):
        assert json.loads(emulator.read_bytes(f["id"]))["md5"] in copies.values()
