"""A new process pushing right after another (a mirror or training run restarted after a
disconnect, a second `push` typed at once) while Drive's listing does not show what the first
one made yet. Each one sent every new file again: a second 90 MB checkpoint per file, against
the quota, until a later push repaired the duplicates (attackpush26). A verified file's create
record is now kept an hour with its md5: the next process creates it with that id, Drive
answers 409, and the file read by id is the one meant: nothing is sent. A verified copy whose
local file changed meanwhile is never updated in place (a sidecar on Drive may vouch for it):
the new bytes go to a new file beside it.

Each push here has a connection of its own (another process's: nothing of the first one's
memory), the state folder on disk shared as on one machine. Asserted: bytes sent, upload
requests, the files left on Drive with their md5s and ids."""
from __future__ import annotations

import hashlib

import pytest

from _checkpoints import sidecar_json
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

DEST = "runs/a"


def _push(emu, src):
    """A push by a process of its own (a fresh connection)."""
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    return push(str(src), (connect(api_root=emu.url, token="test-token"), DEST), jobs=1)


def _live(emu) -> dict:
    out: dict = {}
    for f in emu.files():
        if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder"):
            out.setdefault(f["title"], []).append(f["md5Checksum"])
    return {k: sorted(v) for k, v in out.items()}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_a_new_process_right_after_a_push_does_not_send_its_new_files_again(emulator, env):
    src = env / "run"
    src.mkdir()
    data = b"1" * 50_000
    (src / "epoch_001.pt").write_bytes(data)
    (src / "log.txt").write_bytes(b"epoch 1\n")
    emulator.faults.lag_listing(created=3)
    assert sorted(_push(emulator, src).uploaded) == ["epoch_001.pt", "log.txt"]
    emulator.clear_requests()
    assert _push(emulator, src).bytes_sent == 0
    assert not [r for r in emulator.requests if r.method == "PUT"]   # (the creates: 409)
    assert _live(emulator) == {"epoch_001.pt": [_md5(data)], "log.txt": [_md5(b"epoch 1\n")]}


def test_a_verified_checkpoint_changed_here_is_never_overwritten_in_place(emulator, env):
    """`last.pt` and its sidecar verified on Drive; the next save writes new ones, and the
    next process's listing shows neither yet: its creates name the recorded ids (409), and
    the files read by id hold other bytes. They stay as they were (the old sidecar vouches
    for the old `last.pt` until the new pair is verified); the new bytes go to new files,
    which the pushes after do not send again (before: the new `last.pt` a second time), and
    they repair the names to one copy each, the new ones."""
    src = env / "run"
    src.mkdir()
    one, two = b"1" * 50_000, b"2" * 50_000
    (src / "last.pt").write_bytes(one)
    (src / "last.json").write_bytes(sidecar_json(1, one))
    emulator.faults.lag_listing(created=3)
    _push(emulator, src)
    first = {f["title"]: f["id"] for f in emulator.files() if f["title"].startswith("last.")}
    (src / "last.pt").write_bytes(two)
    (src / "last.json").write_bytes(sidecar_json(2, two))
    _push(emulator, src)
    by_id = {f["id"]: f.get("md5Checksum") for f in emulator.files()}
    assert by_id[first["last.pt"]] == _md5(one)
    assert by_id[first["last.json"]] == _md5(sidecar_json(1, one))
    # The listings catch up (what lags keeps its count): the next pushes send no checkpoint
    # again (only the small sidecar, updated in place over the old one once that shows), and
    # repair the names to one copy each.
    emulator.faults.lag_listing()
    assert sum(_push(emulator, src).bytes_sent for _ in range(5)) < len(two)
    assert _live(emulator) == {"last.pt": [_md5(two)],
                               "last.json": [_md5(sidecar_json(2, two))]}


def test_a_push_that_writes_its_records_drops_those_of_files_it_listed(emulator, env):
    """The records of verified files go once a listing shows the files, with a write the
    push makes anyway (an unchanged push writes nothing): the state file does not grow with
    every file pushed in the last hour."""
    from drivestage.create_ids import CreateIds

    src = env / "run"
    src.mkdir()
    (src / "a.bin").write_bytes(b"a" * 1000)
    _push(emulator, src)
    assert [k.rsplit("|", 1)[1] for k in CreateIds().recorded()] == ["a.bin"]
    (src / "b.bin").write_bytes(b"b" * 1000)
    _push(emulator, src)
    assert [k.rsplit("|", 1)[1] for k in CreateIds().recorded()] == ["b.bin"]


def test_a_checkpoint_a_failed_push_verified_is_never_overwritten_in_place(emulator, env):
    """Push 1 verifies `last.pt` and `last.json`, then fails on another file (a refusal):
    its records were never marked verified (they are once a pass ends). The next process,
    whose listing shows neither file yet, creates `last.pt` (changed here: the next epoch)
    with the recorded id; Drive answers 409 and the file read by id holds the old bytes. A
    checkpoint is never overwritten in place that way (the old sidecar vouches for it until
    the new pair is verified): the new bytes go to a new file."""
    import json

    from _proxy import Proxy, Reply
    from drivestage.drive import connect
    from drivestage.errors import DriveStageError
    from drivestage.upload_tree import push

    src = env / "run"
    src.mkdir()
    v1, v2 = b"1" * 50_000, b"2" * 50_000
    (src / "last.pt").write_bytes(v1)
    (src / "last.json").write_bytes(sidecar_json(1, v1))
    (src / "z.log").write_bytes(b"log")
    refusal = json.dumps({"error": {"code": 403, "message": "no", "errors": [
        {"domain": "global", "reason": "insufficientFilePermissions", "message": "no"}]}})
    with Proxy(emulator.url) as proxy:
        # (the answer to the upload that made z.log, turned into a refusal: what Drive made
        # is what the push does not know of)
        proxy.on("PUT", r"^/upload/", lambda status, headers, body: Reply(
            403, {"Content-Type": "application/json"}, [refusal.encode()])
            if b"z.log" in body else Reply(status, headers, [body]))
        emulator.faults.lag_listing(created=3)
        with pytest.raises(DriveStageError):
            push(str(src), (connect(api_root=proxy.url, token="test-token"), DEST), jobs=1)
    first = {f["title"]: f["id"] for f in emulator.files() if f["title"].startswith("last.")}
    assert emulator.read_bytes(first["last.pt"]) == v1
    (src / "last.pt").write_bytes(v2)
    (src / "last.json").write_bytes(sidecar_json(2, v2))
    _push(emulator, src)
    assert emulator.read_bytes(first["last.pt"]) == v1
    emulator.faults.lag_listing()
    for _ in range(5):
        _push(emulator, src)
    assert _live(emulator) == {"last.pt": [_md5(v2)], "last.json": [_md5(sidecar_json(2, v2))],
                               "z.log": [_md5(b"log")]}
