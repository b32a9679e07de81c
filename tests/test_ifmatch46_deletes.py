"""ifmatch46: a removal names the etag its check read (``If-Match``), so Drive keeps what
changed in between.

drivestage reads an item (files.get, alone or batched) and deletes it one round trip
later. A checkpoint replaced in place in that window (another trainer's new revision under
the same id) was deleted all the same: a verified checkpoint lost. Now each delete names
the etag its check read; Drive (fidelity46: the emulator as Drive v2) answers 412
conditionNotMet, and the command keeps the item, says so in one line and goes on, exit 0,
as it does for an item changed since the listing. Real PyDrive2 + googleapiclient against
the emulator, through tests/_proxy.py: the other writer's revision lands as the check's
answer passes by (before drivestage has it), never by time. The lone delete's case (``push
--delete``) is in tests/test_messages_ifmatch46.py, which shows its troubleshooting entry.
"""
from __future__ import annotations

import io
import os
import threading

from googleapiclient.http import MediaIoBaseUpload

from _checkpoints import md5, pushed_then_saved
from _cli import run
from _drive_clients import drive_service
from _drive_state import live_md5s
from _proxy import Reply

CHANGED = "changed on Drive since it was checked (HTTP 412 conditionNotMet"


def _new_revision(emulator, fid: str, data: bytes) -> None:
    """Another writer's files.update of ``fid`` with new bytes (same id, same name)."""
    body = MediaIoBaseUpload(io.BytesIO(data), "application/octet-stream", resumable=False)
    drive_service(emulator.url).files().update(fileId=fid, body={}, media_body=body).execute()


def _replaced_as_read(emulator, fid: str, data: bytes, *, batch: bool):
    """A proxy rule: the first answer that reads ``fid`` (a files.get, or a batch of them)
    passes by as it was, and ``fid`` gets ``data`` before drivestage has that answer. A lone
    files.get of ``fid`` after that is answered as the first was (what the check saw)."""
    first: list[bytes] = []
    lock = threading.Lock()

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        with lock:
            if not first and fid.encode() in body and b'"drive#file"' in body:
                first.append(body)
                _new_revision(emulator, fid, data)
            elif first and not batch:
                body = first[0]
        return Reply(status, headers, [body])
    return mutate


def test_a_prune_keeps_a_checkpoint_replaced_after_its_check(emulator, through, tmp_path):
    src, first, second = pushed_then_saved(tmp_path)
    fid = emulator.find("runs/a/epoch_001.pt")["id"]
    other = os.urandom(3000)   # another trainer's epoch_001.pt, saved again in place
    through.on("POST", r"^/batch/", _replaced_as_read(emulator, fid, other, batch=True))
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1", "--jobs", "1")
    assert code == 0, err
    said = [line for line in err.splitlines() if CHANGED in line]
    assert len(said) == 1 and "runs/a/epoch_001.pt" in said[0], err
    live = live_md5s(emulator, "runs/a")
    # The new revision stays, whole (its sidecar with it: a pair goes together).
    assert live == {**first, **second, "epoch_001.pt": [md5(other)]}, live
    assert emulator.read_bytes(fid) == other


def _stray(emulator, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    code, _, err = run("push", str(src), "drive:runs/b")
    assert code == 0, err
    return str(src), emulator.add_file("runs/b/stray.bin", b"old stray bytes")


def test_an_unchanged_file_is_deleted_with_one_read_and_its_etag(emulator, through, tmp_path):
    src, fid = _stray(emulator, tmp_path)
    etag = emulator.render(emulator.store.get(fid))["etag"]
    start = len(emulator.requests)
    code, _, err = run("push", src, "drive:runs/b", "--delete", "--delete-permanently")
    assert code == 0, err
    assert CHANGED not in err, err
    assert emulator.store.files.get(fid) is None
    mine = [(r.method, r.headers.get("If-Match")) for r in emulator.requests[start:]
            if fid in r.path]
    # One read (the check), then the delete naming what it read: no request more than before.
    assert mine == [("GET", None), ("DELETE", etag)], mine


def test_a_batch_of_unchanged_trashes_names_each_etag(emulator, through, tmp_path):
    src, fid = _stray(emulator, tmp_path)
    two = emulator.add_file("runs/b/stray2.bin", b"second stray")
    etags = {f: emulator.render(emulator.store.get(f))["etag"] for f in (fid, two)}
    start = len(emulator.requests)
    code, _, err = run("push", src, "drive:runs/b", "--delete")   # (to the trash)
    assert code == 0, err
    assert CHANGED not in err, err
    assert set(live_md5s(emulator, "runs/b")) == {"keep.txt"}
    calls = [r for r in emulator.requests[start:] if any(f in r.path for f in etags)]
    assert sorted((r.kind, r.in_batch) for r in calls) == \
        [("files.get", True)] * 2 + [("files.trash", True)] * 2, calls
    assert {r.path.split("/")[4]: r.headers.get("If-Match") for r in calls
            if r.kind == "files.trash"} == etags
