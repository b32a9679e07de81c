"""Two pushes in a row from one process (a training run's hooks push at every save; a
mirror's periods), Drive's listing lagging behind the first push's writes. The first push
updated `last.json` in place; the second listed it with its old md5 and, asking whose run the
sidecar on Drive names (push leaves another run's checkpoints alone), read it against that
md5: `drive:runs/a/last.json changed on Drive since it was listed (md5 … became …); list it
again`, exit 1, for a change this process made itself. The sidecar is read as it is now."""
from __future__ import annotations

import hashlib

from _checkpoints import sidecar_json


def _live(emu) -> list:
    return sorted((f["title"], f["md5Checksum"]) for f in emu.files()
                  if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder"))


def test_a_push_right_after_one_that_updated_a_sidecar_reads_it_as_it_is_now(
        emulator, local_state):
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    store = connect(api_root=emulator.url, token="test-token")   # one process's
    src = local_state / "run"
    src.mkdir()
    one, two = b"1" * 5000, b"2" * 5000
    (src / "last.pt").write_bytes(one)
    (src / "last.json").write_bytes(sidecar_json(1, one))
    push(str(src), (store, "runs/a"), jobs=1)
    emulator.faults.lag_listing(created=3, updated=3, deleted=3)
    (src / "last.pt").write_bytes(two)
    (src / "last.json").write_bytes(sidecar_json(2, two))
    assert sorted(push(str(src), (store, "runs/a"), jobs=1).uploaded) == ["last.json",
                                                                          "last.pt"]
    # The next pushes list the old copies still (the lag is counted in listings): each
    # goes on; once the listing shows what is there, the copies sent meanwhile are repaired.
    emulator.faults.lag_listing()
    for _ in range(5):
        push(str(src), (store, "runs/a"), jobs=1)
    side = sidecar_json(2, two)
    assert _live(emulator) == [("last.json", hashlib.md5(side).hexdigest()),
                               ("last.pt", hashlib.md5(two).hexdigest())]
