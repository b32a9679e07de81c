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
    # The next pushes list the old copies still (the lag is counted in listings): each goes
    # on, and Drive ends with one copy of each file.
    emulator.faults.lag_listing()
    for _ in range(5):
        push(str(src), (store, "runs/a"), jobs=1)
    side = sidecar_json(2, two)
    assert _live(emulator) == [("last.json", hashlib.md5(side).hexdigest()),
                               ("last.pt", hashlib.md5(two).hexdigest())]


def test_a_push_right_after_one_does_not_send_its_new_files_again(emulator, local_state):
    """The file the first push made is not in the next listing yet: the second push sent
    it again, a second copy (a 90 MB checkpoint per save, against the quota) until a later
    push repaired it. The file this process made there is read by id instead: there, as
    made, with the local bytes: nothing is sent."""
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    store = connect(api_root=emulator.url, token="test-token")
    src = local_state / "run"
    src.mkdir()
    data = b"1" * 5000
    (src / "epoch_001.pt").write_bytes(data)
    emulator.faults.lag_listing(created=2)
    assert push(str(src), (store, "runs/a"), jobs=1).uploaded == ["epoch_001.pt"]
    emulator.clear_requests()
    second = push(str(src), (store, "runs/a"), jobs=1)
    assert second.bytes_sent == 0
    assert not [r for r in emulator.requests if r.path.startswith("/upload/")]
    assert _live(emulator) == [("epoch_001.pt", hashlib.md5(data).hexdigest())]


def test_a_replaced_checkpoint_is_not_sent_again_while_the_listing_lags(emulator,
                                                                       local_state):
    """`last.pt` replaced by a push (a new copy, the old one deleted): the next pushes
    listed the deleted old copy and not the new one, and each sent `last.pt` again."""
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    store = connect(api_root=emulator.url, token="test-token")
    src = local_state / "run"
    src.mkdir()
    one, two = b"1" * 5000, b"2" * 5000
    (src / "last.pt").write_bytes(one)
    (src / "last.json").write_bytes(sidecar_json(1, one))
    push(str(src), (store, "runs/a"), jobs=1)
    emulator.faults.lag_listing(created=3, updated=3, deleted=3)
    (src / "last.pt").write_bytes(two)
    (src / "last.json").write_bytes(sidecar_json(2, two))
    push(str(src), (store, "runs/a"), jobs=1)
    emulator.clear_requests()
    for _ in range(2):
        assert push(str(src), (store, "runs/a"), jobs=1).bytes_sent <= len(sidecar_json(2, two))
    assert _live(emulator) == [("last.json", hashlib.md5(sidecar_json(2, two)).hexdigest()),
                               ("last.pt", hashlib.md5(two).hexdigest())]
