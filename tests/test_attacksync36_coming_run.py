"""attacksync36: a push stopped between a Contributor's in-place update of ``last.pt`` and its
sidecar's last write (:mod:`drivestage.sidecar_phases`) left a sidecar whose top-level keys
describe the old bytes and whose ``coming`` describes the bytes now there. Where the old
sidecar named no run (a ``CheckpointSync`` loop's: md5, no run), the "another run's
checkpoint" guard (:mod:`drivestage.other_runs`) read the top-level keys only, found no run,
and the next push of another run replaced run R1's verified checkpoint without ``--force``;
had R1's push finished, it was refused. The guard now asks whose the bytes there are.

Through the real stack: the library push and the CLI, PyDrive2, googleapiclient, the
emulator over HTTP with a shared drive where this account is a Contributor (``writer``).
The stop is an exception raised by a wrapper around the real ``store.upload`` right after
``last.pt``'s update returned (Drive holds it; the push never hears), as a SIGKILL there.
No sleeps."""
from __future__ import annotations

import json
import os

import pytest

from _checkpoints import md5
from _cli import run

DEST = "drive:shared/Team/run"
T0 = 1764600000.0
R1 = "20261201-151200-r1r1"
R2 = "20261202-090000-r2r2"


class _Killed(BaseException):
    """The push stopped here (as by SIGKILL): nothing after it runs."""


def _save(src, epoch: int, when: float, run_id) -> bytes:
    os.makedirs(src, exist_ok=True)
    data = os.urandom(3000)
    body = {"format": 3, "epoch": epoch, "iteration": epoch * 10, "epoch_iteration": 0,
            "md5": md5(data), "size": len(data), "saved": when, "metrics": {}}
    if run_id is not None:
        body["run"] = run_id
    for name, raw in (("last.pt", data), ("last.json", json.dumps(body).encode())):
        path = os.path.join(src, name)
        with open(path, "wb") as fh:
            fh.write(raw)
        os.utime(path, (when, when))
    return data


def _live(emulator, team: str) -> dict:
    return {f["title"]: f for f in emulator.files()
            if not f["labels"]["trashed"] and f.get("driveId") == team
            and f["title"] in ("last.pt", "last.json")}


@pytest.mark.parametrize("stopped", [True, False])
def test_another_runs_push_leaves_a_checkpoint_whose_push_was_stopped(
        emulator, drive_env, local_state, tmp_path, stopped):
    """A loop without a run (CheckpointSync's sidecar: md5, no run) pushed last.pt; run R1's
    push replaces it in place (Contributor) and is stopped right after last.pt's update
    (``stopped``; else it finishes). Run R2's push of its own last.pt, without --force, is
    refused and leaves R1's checkpoint as it is, either way. Before: stopped, R1's bytes
    were replaced by R2's, exit 0."""
    from drivestage.remote import open_store
    from drivestage.upload_tree import push

    team = emulator.add_shared_drive("Team", role="writer")
    emulator.add_folder("run", drive_id=team)
    _save(str(tmp_path / "loop"), 1, T0, None)
    push(str(tmp_path / "loop"), DEST)
    r1 = _save(str(tmp_path / "r1"), 2, T0 + 60, R1)
    store, where = open_store(DEST)
    real = store.upload

    def upload(local_path, folder, name, **kw):
        got = real(local_path, folder, name, **kw)
        if stopped and name == "last.pt":
            raise _Killed()
        return got

    store.upload = upload
    try:
        push(str(tmp_path / "r1"), (store, where), jobs=1)
    except _Killed:
        pass
    there = _live(emulator, team)
    assert there["last.pt"]["md5Checksum"] == md5(r1)
    side = json.loads(emulator.read_bytes(there["last.json"]["id"]))
    assert ("coming" in side) is stopped, side   # (the state a kill there leaves)

    _save(str(tmp_path / "r2"), 1, T0 + 120, R2)
    code, _, err = run("push", str(tmp_path / "r2"), DEST)

    assert code == 1, err
    assert err.splitlines()[-1] == (
        f"Error: {DEST}/last.pt is another run's checkpoint (run {R1}, epoch 2), left as it "
        "is; the rest was pushed. Push into another folder, or add --force to replace it")
    now = _live(emulator, team)
    assert now["last.pt"]["md5Checksum"] == md5(r1)
    assert now["last.json"]["md5Checksum"] == there["last.json"]["md5Checksum"]
