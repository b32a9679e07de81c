"""A checkpoint a store replaces in place (a local DEST: a NAS, a Drive mount), saved again
while a push sent it (attacksync34)."""
from __future__ import annotations

import json

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
