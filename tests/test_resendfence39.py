"""resendfence39: a checkpoint a push sends once more is guarded as its first send is
(drivestage.push_fence). The re-send (drivestage.push_resend) checked the push's guard only
before it began: a checkpoint updated in place (a shared drive's Contributor may not delete)
and saved again while the push ran is sent again into that copy, in many chunks on a real
model, and its last chunk commits it; a lease lost after its first chunk (another trainer
took the run over) still wrote the rest over the copy. And a checkpoint gone from the store
before its sidecar (another runtime's ``push --delete``), sent again as a new copy, had its
sidecar written with no check in between. The guard refuses by what the emulator's request
log shows, never by time; the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import json
import os

import pytest

from _checkpoints import md5, sidecar_json

CHUNK = 256 * 1024
SIZE = 3 * CHUNK + 100   # (four chunks)


class Refused(Exception):
    pass


def _save(src, epoch: int, when: float, size: int = SIZE) -> str:
    """The loop's save of last.pt and its sidecar; the md5 of last.pt."""
    os.makedirs(src, exist_ok=True)
    data = os.urandom(size)
    for name, body in (("last.pt", data), ("last.json", sidecar_json(epoch, data))):
        path = os.path.join(src, name)
        with open(path, "wb") as fh:
            fh.write(body)
        os.utime(path, (when, when))
    return md5(data)


def _live(emulator, name: str) -> list[dict]:
    return [f for f in emulator.files() if f["title"] == name and not f["labels"]["trashed"]]


def test_a_guard_refusing_after_the_first_chunk_of_a_resend_in_place_leaves_the_copy(
        emulator, drive_env, local_state, tmp_path):
    """A Contributor's push updates last.pt in place; the loop saves last.pt and last.json
    again while the push sends z.bin, so last.json names bytes not sent: last.pt is sent
    again, into that copy. The lease is lost once the re-send's first chunk is kept: Drive's
    last.pt keeps the bytes it had (not half of them updated and the rest sent anyway), its
    sidecar vouches for it, and the push ends with the guard's error."""
    from drivestage import sidecar
    from drivestage.upload_tree import push

    team = emulator.add_shared_drive("Team", role="writer")
    emulator.add_folder("run", drive_id=team)
    src, dest = tmp_path / "run", "drive:shared/Team/run"
    _save(str(src), 1, 1000.0)
    push(str(src), dest)
    ckpt = _live(emulator, "last.pt")[0]["id"]
    sent = _save(str(src), 2, 2000.0)
    (src / "z.bin").write_bytes(b"z" * 5000)   # sent after last.pt, before last.json
    moved: list[int] = [0]
    mark: list[int] = []   # the request log's length when the loop saved again

    def progress(n: int) -> None:
        moved[0] += n
        if not mark and moved[0] > SIZE:   # last.pt sent (in place): the loop saves
            mark.append(len(emulator.requests))
            _save(str(src), 3, 3000.0)

    def chunks_again() -> int:
        """Chunks of last.pt Drive kept since the loop saved again (an upload not done)."""
        return 0 if not mark else sum(
            1 for r in emulator.requests[mark[0]:] if r.status == 308
            and r.path.endswith(f"/files/{ckpt}") and r.kind == "media.upload")

    def guard() -> None:   # the lease, lost once the re-send's first chunk is on Drive
        if chunks_again():
            raise Refused("the lease is another trainer's now")

    with pytest.raises(Refused):
        push(str(src), dest, progress=progress, jobs=1, chunk_size=CHUNK, guard=guard)

    assert mark and chunks_again() == 1
    assert [f["id"] for f in _live(emulator, "last.pt")] == [ckpt]
    assert _live(emulator, "last.pt")[0]["md5Checksum"] == sent   # as the first send left it
    side = _live(emulator, "last.json")
    assert len(side) == 1
    said = sidecar.parse(emulator.read_bytes(side[0]["id"]))
    assert said is not None and sent in said.md5s


def test_a_guard_refusing_after_a_checkpoint_gone_is_sent_again_writes_no_sidecar(
        emulator, drive_env, local_state, tmp_path):
    """A push replaces last.pt by a new copy; another runtime deletes that copy while z.bin
    is sent, so it is sent again before last.json. The lease is lost once the copy sent again
    is on Drive: last.json is not written (it would vouch for a copy a trainer that lost the
    run sent), that copy is removed (this push's own: no sidecar vouches for it), and Drive
    keeps the pair before the push, verified."""
    from drivestage.upload_tree import push

    src, dest = tmp_path / "run", "drive:runs/exp"
    old = _save(str(src), 1, 1000.0, size=3000)
    push(str(src), dest)
    old_side = _live(emulator, "last.json")[0]["md5Checksum"]
    _save(str(src), 2, 2000.0, size=3000)
    (src / "z.bin").write_bytes(b"z" * 5000)   # sent after last.pt, before last.json
    moved: list[int] = [0]
    gone: list[str] = []
    mark: list[int] = []

    def progress(n: int) -> None:
        moved[0] += n
        if not gone and moved[0] > 3000:   # the new last.pt sent: another runtime deletes it
            new = [f["id"] for f in _live(emulator, "last.pt") if f["md5Checksum"] != old]
            emulator.store.delete(new[0])
            gone.append(new[0])
            mark.append(len(emulator.requests))

    def made_again() -> int:
        """Copies of last.pt made since the first new copy was deleted."""
        return 0 if not mark else sum(
            1 for r in emulator.requests[mark[0]:] if r.status == 200
            and r.kind == "media.upload" and r.bytes_in == 3000)

    def guard() -> None:   # the lease, lost once last.pt is on Drive again
        if made_again():
            raise Refused("the lease is another trainer's now")

    with pytest.raises(Refused):
        push(str(src), dest, progress=progress, jobs=1, guard=guard)

    assert gone and made_again() == 1
    assert [f["md5Checksum"] for f in _live(emulator, "last.pt")] == [old]
    assert [f["md5Checksum"] for f in _live(emulator, "last.json")] == [old_side]
    said = json.loads(emulator.read_bytes(_live(emulator, "last.json")[0]["id"]))
    assert said["md5"] == old
