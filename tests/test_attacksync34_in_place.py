"""A checkpoint a store replaces in place (a local DEST: a NAS, a Drive mount), saved again
while a push sent it (attacksync34)."""
from __future__ import annotations

import json
import os

import pytest

from _checkpoints import md5, save

T0 = 1764600000.0


def _pair(read) -> "tuple[str, str]":
    """(md5 of last.pt, the md5 last.json vouches for) as DEST holds them."""
    return md5(read("last.pt")), json.loads(read("last.json"))["md5"]


def test_a_checkpoint_replaced_in_place_and_saved_again_meanwhile_ends_verified(
        local_state, tmp_path):
    """``mirror ./run /mnt/nas/run``: a local DEST replaces a changed checkpoint in place
    (renamed over it: a folder holds one file of a name). The loop saved last.pt
    and last.json again while the push sent the other files: its sidecar then named bytes
    the push had not sent, so it was left for the next push, "and the copy the sidecar on
    the store vouches for stays". No copy did: replaced in place, DEST held the new last.pt
    beside the old sidecar, no verified last.pt, until a next push (none, for a one-off
    push). The checkpoint is sent again as it is now, then its sidecar."""
    from drivestage.upload_tree import push

    folder = tmp_path / "nas" / "run"
    where, read = str(folder), lambda name: (folder / name).read_bytes()
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    push(str(src), where)
    first = _pair(read)
    assert first[0] == first[1]
    save(str(src), "last", 2, T0 + 60)
    (src / "z.bin").write_bytes(b"z" * 5000)   # sent after last.pt, before last.json
    saved: list[dict] = []

    def progress(n: int) -> None:
        if not saved and md5(read("last.pt")) != first[0]:   # last.pt sent: the loop saves
            saved.append(save(str(src), "last", 3, T0 + 120))

    push(str(src), where, progress=progress, jobs=1)

    assert saved
    assert _pair(read) == (saved[0]["last.pt"][0], saved[0]["last.pt"][0])


def test_a_checkpoint_written_in_place_while_a_local_dest_copies_it_leaves_the_old_pair(
        local_state, tmp_path):
    """``torch.save(state, "last.pt")`` writes into the file itself; a push into a local
    DEST read it while the loop wrote it. The copy (half old bytes, half new) was renamed
    over the verified last.pt there at once, copied once more, and then "does not match ...
    after the copy": exit 1, DEST holding a torn last.pt under its name beside a sidecar
    that vouched for the copy it replaced. A copy whose source changed while it was read
    replaces nothing now; after three such tries the push says the file kept changing, and
    DEST keeps its verified pair."""
    from drivestage.errors import SourceChangedError
    from drivestage.upload_tree import push

    folder = tmp_path / "nas" / "run"
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    push(str(src), str(folder))
    before = {name: (folder / name).read_bytes() for name in ("last.pt", "last.json")}
    data = os.urandom(3 << 20)   # three copy chunks
    (src / "last.pt").write_bytes(data)
    writes: list[int] = []

    def progress(n: int) -> None:   # the loop, writing last.pt where the copy reads it
        writes.append(n)
        with open(src / "last.pt", "r+b") as fh:
            fh.write(os.urandom(1 << 20))

    with pytest.raises(SourceChangedError) as raised:
        push(str(src), str(folder), progress=progress, jobs=1)

    assert str(raised.value) == (
        f"{src / 'last.pt'} kept changing while it was uploaded (3 tries); "
        f"{folder / 'last.pt'} was left as it was. Upload it once the writer is done (write "
        "checkpoints to a temporary name and rename them into place).")
    assert {name: (folder / name).read_bytes() for name in ("last.pt", "last.json")} == before
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def test_a_checkpoint_updated_in_place_on_drive_and_saved_again_meanwhile_ends_verified(
        emulator, drive_env, local_state, tmp_path):
    """The same on Drive, where this account is a Contributor of the shared drive (it may
    not delete, so a changed checkpoint is updated in place rather than replaced by a new
    copy): Drive held last.pt as sent beside the old last.json. It is updated once more, in
    place (a copy beside it could never be removed), then its sidecar goes."""
    from drivestage.upload_tree import push

    team = emulator.add_shared_drive("Team", role="writer")
    emulator.add_folder("run", drive_id=team)

    def live(name: str) -> list[dict]:
        return [f for f in emulator.files() if f["title"] == name
                and not f["labels"]["trashed"] and f.get("driveId") == team]
    src = tmp_path / "run"
    save(str(src), "last", 1, T0)
    push(str(src), "drive:shared/Team/run")
    save(str(src), "last", 2, T0 + 60)
    (src / "z.bin").write_bytes(b"z" * 5000)   # sent after last.pt, before last.json
    moved, saved = [0], []

    def progress(n: int) -> None:
        moved[0] += n
        if not saved and moved[0] > 3000:   # last.pt (3000 bytes) sent: the loop saves
            saved.append(save(str(src), "last", 3, T0 + 120))

    push(str(src), "drive:shared/Team/run", progress=progress, jobs=1)

    assert saved
    assert [f.get("md5Checksum") for f in live("last.pt")] == saved[0]["last.pt"]
    assert [json.loads(emulator.read_bytes(f["id"]))["md5"] for f in live("last.json")] == \
        saved[0]["last.pt"]
