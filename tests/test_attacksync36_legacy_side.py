"""attacksync36: a Contributor's push replacing ``last.pt`` in place where Drive holds its
sidecar in 0.1.0's form (``last.pt.json``) and the run now writes the current one
(``last.json``: a trainer upgraded, resumed into the same Drive folder). The first write
(:mod:`drivestage.sidecar_phases`) looked for ``last.json`` on Drive only, found none, and
was skipped: between ``last.pt``'s update in place and ``last.json``'s upload (for good
after a SIGKILL there) Drive held the new bytes beside ``last.pt.json`` naming the old md5,
and a resume from Drive found no verified checkpoint.

Through the real stack (the library push, the trainer's Drive reader and CheckpointSync,
PyDrive2, googleapiclient, the emulator over HTTP, a shared drive where this account is a
Contributor). The stop is an exception raised by a wrapper around the real ``store.upload``
right after ``last.pt``'s update returned (Drive holds it; the push never hears), as a
SIGKILL there. No sleeps."""
from __future__ import annotations

import json
import os

from _checkpoints import RUN, md5

DEST = "drive:shared/Team/run"
T0 = 1764600000.0


class _Killed(BaseException):
    """The push stopped here (as by SIGKILL): nothing after it runs."""


def _side(epoch: int, data: bytes, when: float) -> bytes:
    return json.dumps({"format": 3, "epoch": epoch, "iteration": epoch * 10,
                       "epoch_iteration": 0, "run": RUN, "md5": md5(data),
                       "size": len(data), "saved": when, "metrics": {}}).encode()


def _resumed(tmp_path, tag: str):
    """(md5, epoch) of what a resume from Drive takes (the trainer's reader and
    CheckpointSync's agree), or None: no verified checkpoint."""
    from drivestage.hooks import CheckpointSync
    from trainer.drive import DriveFolder, newest_of_current_run

    chosen = newest_of_current_run(DriveFolder(DEST, str(tmp_path / f"t-{tag}")).checkpoints())
    sync = CheckpointSync(DEST, local_dir=str(tmp_path / f"s-{tag}"))
    try:
        entry = sync.latest_remote_checkpoint()
    finally:
        sync.mirror.stop(flush=False)
    if chosen is None:
        assert entry is None
        return None
    assert entry is not None and entry.md5 == chosen.entry.md5
    assert chosen.sidecar.md5 == chosen.entry.md5
    return chosen.entry.md5, chosen.sidecar.epoch


def test_a_push_stopped_after_last_pt_over_a_legacy_sidecar_leaves_a_verified_pair(
        emulator, drive_env, local_state, tmp_path):
    """Drive: last.pt (epoch 1) and 0.1.0's last.pt.json; local: last.pt (epoch 2) and
    last.json. The push is stopped right after last.pt's update in place: a resume from Drive
    still finds a verified checkpoint with its own description. Before: none."""
    from drivestage.remote import open_store
    from drivestage.upload_tree import push

    team = emulator.add_shared_drive("Team", role="writer")
    emulator.add_folder("run", drive_id=team)
    one = os.urandom(3000)
    emulator.add_file("run/last.pt", one, drive_id=team)
    emulator.add_file("run/last.pt.json", _side(1, one, T0), drive_id=team)
    assert _resumed(tmp_path, "before") == (md5(one), 1)
    src = tmp_path / "run"
    src.mkdir()
    two = os.urandom(3000)
    (src / "last.pt").write_bytes(two)
    (src / "last.json").write_bytes(_side(2, two, T0 + 60))
    store, where = open_store(DEST)
    real = store.upload

    def upload(local_path, folder, name, **kw):
        got = real(local_path, folder, name, **kw)
        if name == "last.pt":
            raise _Killed()
        return got

    store.upload = upload
    try:
        push(str(src), (store, where), jobs=1)
    except _Killed:
        pass
    pts = [f for f in emulator.files() if f["title"] == "last.pt" and f.get("driveId") == team]
    assert [f["md5Checksum"] for f in pts] == [md5(two)]   # (updated in place)

    assert _resumed(tmp_path, "stopped") in ((md5(one), 1), (md5(two), 2))

    push(str(src), DEST)   # (the next push finishes it)
    assert _resumed(tmp_path, "next") == (md5(two), 2)
