"""A recorded id (drivestage.drive.ids) whose file a later push lists as the old copy of a
checkpoint it replaces. A push cut after its new `last.pt` and `last.json` were verified on
Drive, before it dropped their records (another file's upload failed), left the record of
`last.pt`; the next push, replacing `last.pt` (a new copy beside the old one, the old one
deleted once the new sidecar is verified), sent its create with that recorded id: Drive
answered 409, the file was read as "made by a create whose answer was lost" and updated in
place. The verified copy was overwritten before its sidecar was sent: a failure of the
sidecar then left Drive with `last.pt` and a `last.json` vouching for other bytes."""
from __future__ import annotations

import hashlib
import json

import pytest

from _checkpoints import sidecar_json
from _proxy import Reply


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _refused(status: int, headers: dict, body: bytes) -> Reply:
    """Drive refusing the request, not for a retry (a file this account may not write)."""
    err = {"error": {"code": 403, "message": "The user does not have sufficient permissions "
                     "for this file.", "errors": [{"domain": "global", "reason":
                                                   "insufficientFilePermissions",
                                                   "message": "no"}]}}
    return Reply(403, {"Content-Type": "application/json"}, [json.dumps(err).encode()])


def _live(emu, name: str) -> list:
    return [f for f in emu.files() if f["title"] == name and not f["labels"]["trashed"]]


def test_a_recorded_id_of_a_listed_checkpoint_never_overwrites_it(emulator, proxy,
                                                                  local_state, fast_retries):
    from drivestage.drive import connect
    from drivestage.errors import DriveStageError
    from drivestage.upload_tree import push

    src = local_state / "run"
    src.mkdir()
    v1, v2 = b"one" * 100, b"two" * 100
    (src / "last.pt").write_bytes(v1)
    (src / "last.json").write_bytes(sidecar_json(1, v1))
    (src / "z.log").write_bytes(b"log")
    emulator.add_folder("runs")
    # Push 1: last.pt, then z.log, whose answer Drive's proxy turns into a refusal (the
    # create was made: its answer is what is lost), then last.json. The push fails, its
    # verified files' records still on this machine.
    creates = [0]

    def second_create_refused(status: int, headers: dict, body: bytes) -> Reply:
        creates[0] += 1
        if creates[0] == 2:
            return _refused(status, headers, body)
        return Reply(status, headers, [body])
    rule = proxy.on("POST", r"^/upload/", second_create_refused)
    with pytest.raises(DriveStageError):
        push(str(src), "runs", store=connect(api_root=proxy.url, token="test-token"), jobs=1)
    proxy.rules.remove(rule)
    (first,) = _live(emulator, "last.pt")
    assert emulator.read_bytes(first["id"]) == v1
    assert [json.loads(emulator.read_bytes(f["id"]))["md5"]
            for f in _live(emulator, "last.json")] == [_md5(v1)]
    # The next epoch: last.pt and its sidecar saved again. Push 2's update of last.json is
    # refused (cut there, as by a kill): what Drive holds must still be a checkpoint its
    # sidecar vouches for.
    (src / "last.pt").write_bytes(v2)
    (src / "last.json").write_bytes(sidecar_json(2, v2))
    side_id = _live(emulator, "last.json")[0]["id"]
    proxy.on("PUT", side_id, _refused)
    proxy.on("POST", side_id, _refused)
    with pytest.raises(DriveStageError):
        push(str(src), "runs", store=connect(api_root=proxy.url, token="test-token"), jobs=1)
    vouched = json.loads(emulator.read_bytes(_live(emulator, "last.json")[0]["id"]))["md5"]
    copies = {f["id"]: f["md5Checksum"] for f in _live(emulator, "last.pt")}
    assert vouched in copies.values(), (vouched, copies)
    assert emulator.read_bytes(first["id"]) == v1
    # The next push sends the sidecar: one last.pt left, the new one, vouched for.
    proxy.rules.clear()
    push(str(src), "runs", store=connect(api_root=proxy.url, token="test-token"), jobs=1)
    (last,) = _live(emulator, "last.pt")
    assert emulator.read_bytes(last["id"]) == v2
    (side,) = _live(emulator, "last.json")
    assert json.loads(emulator.read_bytes(side["id"]))["md5"] == _md5(v2)
    assert len(_live(emulator, "z.log")) == 1
