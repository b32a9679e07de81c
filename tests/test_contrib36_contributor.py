"""A checkpoint replaced in a shared drive where this account is only a Contributor (it adds
and edits, never trashes nor deletes): the push updates ``last.pt`` in place, and its sidecar
``last.json`` in place after it. Between the two (and for good after a SIGKILL there) a
reader found a ``last.pt`` its sidecar did not vouch for: no verified checkpoint, a resume
from Drive started afresh (contrib36). The push now writes the sidecar in two phases: first
vouching for the copy on Drive *and* the one coming, then the checkpoint, then the sidecar
of the new one only; a reader takes whichever the sidecar vouches for, with that entry's
description."""
from __future__ import annotations

import json
import os

import pytest

from _checkpoints import RUN, md5
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (the fork server, started before the leak check)

DEST = "drive:shared/Team/run"
T0 = 1764600000.0
SIZE = 1 << 20          # four chunks of 256 KiB: a SIGKILL can land mid-upload
CHUNK = 256 << 10


def _save(src, epoch: int, when: float) -> bytes:
    """The trainer's save of ``last.pt`` (SIZE random bytes) and its sidecar; its bytes."""
    os.makedirs(src, exist_ok=True)
    data = os.urandom(SIZE)
    side = json.dumps({"format": 3, "epoch": epoch, "iteration": epoch * 10,
                       "epoch_iteration": 0, "run": RUN, "md5": md5(data), "size": SIZE,
                       "saved": when, "metrics": {}}).encode()
    for name, body in (("last.pt", data), ("last.json", side)):
        path = os.path.join(src, name)
        with open(path, "wb") as fh:
            fh.write(body)
        os.utime(path, (when, when))
    return data


def _team(emulator, role: str = "writer") -> str:
    team = emulator.add_shared_drive("Team", role=role)
    emulator.add_folder("run", drive_id=team)
    return team


def _live(emulator, team: str, name: str) -> list[dict]:
    return [f for f in emulator.files() if f["title"] == name
            and not f["labels"]["trashed"] and f.get("driveId") == team]


def _resumed(tmp_path, tag: str) -> "tuple[str, int] | None":
    """What a resume from Drive takes: (md5 of the bytes it would fetch, the epoch its sidecar
    gives them), by the trainer's reader and CheckpointSync's; the two agree."""
    from drivestage.hooks import CheckpointSync
    from trainer.drive import DriveFolder, newest_of_current_run

    found = DriveFolder(DEST, str(tmp_path / f"t-{tag}")).checkpoints()
    chosen = newest_of_current_run(found)
    sync = CheckpointSync(DEST, local_dir=str(tmp_path / f"s-{tag}"))
    try:
        entry = sync.latest_remote_checkpoint()
    finally:
        sync.mirror.stop(flush=False)   # (no push of its own: one runs meanwhile)
    if chosen is None:
        assert entry is None
        return None
    assert entry is not None and entry.md5 == chosen.entry.md5
    assert chosen.sidecar.md5 == chosen.entry.md5   # the description is of these bytes
    return chosen.entry.md5, chosen.sidecar.epoch


def test_a_reader_at_every_step_of_a_contributors_replacement_finds_a_verified_pair(
        emulator, drive_env, local_state, tmp_path):
    """Before and after each upload of the push that replaces last.pt (Contributor: in
    place), a resume from Drive finds last.pt with the description of its own bytes: epoch
    1's until the new bytes are there, epoch 2's from then on. Before: after last.pt's
    update, no verified checkpoint at all."""
    from drivestage.remote import open_store
    from drivestage.upload_tree import push

    _team(emulator)
    src = tmp_path / "run"
    one = _save(str(src), 1, T0)
    push(str(src), DEST)
    two = _save(str(src), 2, T0 + 60)
    store, where = open_store(DEST)
    real = store.upload
    seen: list = []

    def upload(local_path, folder, name, **kw):
        seen.append((f"before {name}", _resumed(tmp_path, str(len(seen)))))
        got = real(local_path, folder, name, **kw)
        seen.append((f"after {name}", _resumed(tmp_path, str(len(seen)))))
        return got

    store.upload = upload   # (a reader at each step; the upload itself is the real one)
    push(str(src), (store, where), jobs=1, chunk_size=CHUNK)

    for at, got in seen:
        assert got in ((md5(one), 1), (md5(two), 2)), at
    assert [at for at, _ in seen if at.startswith("after")] == [
        "after last.json", "after last.pt", "after last.json"]
    assert seen[-1][1] == (md5(two), 2)
    assert _resumed(tmp_path, "end") == (md5(two), 2)


_KILLED = r"""
import os, signal, sys
from drivestage.remote import open_store
from drivestage.upload_tree import push

src, dest, at = sys.argv[1], sys.argv[2], sys.argv[3]
store, where = open_store(dest)
real, calls = store.upload, [0]

def upload(local_path, folder, name, **kw):
    calls[0] += 1
    if at == f"mid{calls[0]}":   # the first chunk of this upload kept: killed then
        def progress(n):
            os.kill(os.getpid(), signal.SIGKILL)
        kw["progress"] = progress
    got = real(local_path, folder, name, **kw)
    if at in (f"after{calls[0]}", f"after {name}"):   # Drive holds it; the push never heard
        os.kill(os.getpid(), signal.SIGKILL)
    return got

store.upload = upload
push(src, (store, where), jobs=1, chunk_size=256 << 10)
print("finished")
"""

STEPS = ["mid1", "after1", "mid2", "after2", "after3"]


@pytest.mark.parametrize("at", STEPS)
def test_a_contributors_push_killed_at_each_step_leaves_a_verified_pair(
        emulator, drive_env, local_state, tmp_path, at):
    """SIGKILL of the push at each step of the replacement (during or right after the
    sidecar's first update, last.pt's update, the sidecar's last update): a resume from Drive
    finds a checkpoint and the description of its own bytes; a pull of the folder gives a
    pair the trainer reads alike; the next push leaves a plain pair (one file of each name,
    the sidecar vouching for last.pt's bytes alone). Before: killed after last.pt's update,
    no verified checkpoint."""
    from drivestage.upload_tree import push
    from drivestage.stage import pull
    from trainer import checkpoint as ckpt

    team = _team(emulator)
    src = tmp_path / "run"
    one = _save(str(src), 1, T0)
    push(str(src), DEST)
    two = _save(str(src), 2, T0 + 60)
    proc = cli_server().run([str(src), DEST, at], script=_KILLED, text=True, timeout=120,
                            cwd=str(tmp_path))
    assert proc.returncode == -9, proc.stdout + proc.stderr

    got = _resumed(tmp_path, "killed")
    assert got in ((md5(one), 1), (md5(two), 2))
    if at == "after2":
        assert got == (md5(two), 2)
    # What an older drivestage reads (it knows no "coming"): the description of the old
    # bytes until the last write, never the old description for the new bytes' md5.
    [side] = _live(emulator, team, "last.json")
    top = json.loads(emulator.read_bytes(side["id"]))
    assert (top["md5"], top["epoch"]) in ((md5(one), 1), (md5(two), 2))
    if at in ("after1", "mid2", "after2"):
        assert (top["md5"], top["coming"]["md5"], top["coming"]["epoch"]) == (
            md5(one), md5(two), 2)
    pull(DEST, str(tmp_path / "pulled"))
    pulled = tmp_path / "pulled" / "run"
    [local] = ckpt.list_checkpoints(str(pulled))
    data = (pulled / "last.pt").read_bytes()
    assert (md5(data), local.sidecar.epoch) == got
    assert ckpt.read_sidecar(str(pulled / "last.pt")).md5 == md5(data)

    push(str(src), DEST)
    [pt], [side] = _live(emulator, team, "last.pt"), _live(emulator, team, "last.json")
    body = json.loads(emulator.read_bytes(side["id"]))
    assert (pt["md5Checksum"], body["md5"], body["epoch"]) == (md5(two), md5(two), 2)
    assert "coming" not in body
    assert _resumed(tmp_path, "next") == (md5(two), 2)


@pytest.mark.parametrize("role", ["organizer", "fileOrganizer", "writer"])
def test_the_requests_of_a_replacement_by_role(emulator, drive_env, local_state, tmp_path,
                                               role):
    """A Manager or a Content manager replaces last.pt as before (a new file beside the old,
    then its sidecar, the new one read back, then the old one deleted or trashed). A
    Contributor's in-place replacement reads the sidecar on Drive once and writes it once
    more (its first phase): two requests more than before, and Drive holds one file of each
    name, the sidecar vouching for the new last.pt alone."""
    from drivestage.upload_tree import push

    team = _team(emulator, role)
    src = tmp_path / "run"
    _save(str(src), 1, T0)
    push(str(src), DEST)
    two = _save(str(src), 2, T0 + 60)
    emulator.clear_requests()
    push(str(src), DEST)
    sent = [r for r in emulator.requests if r.method in ("POST", "PUT") and "upload" in r.path]
    assert (len(emulator.requests), len(sent)) == COUNTS[role]
    [pt], [side] = _live(emulator, team, "last.pt"), _live(emulator, team, "last.json")
    assert (pt["md5Checksum"], json.loads(emulator.read_bytes(side["id"]))) == (
        md5(two), json.loads((src / "last.json").read_bytes()))


#: (requests, uploads) of the second push; before contrib36 the same but "writer": (16, 4);
#: a Manager's and a Content manager's one more since attackserver42: the new copy read back
#: (files.get) before the old one goes (a 200 naming a file Drive never stored lost it)
COUNTS = {"organizer": (21, 4), "fileOrganizer": (22, 4), "writer": (20, 6)}


def test_a_checkpoint_saved_again_while_a_contributors_push_sent_it_keeps_a_verified_pair(
        emulator, drive_env, local_state, tmp_path):
    """The loop saves last.pt and last.json again just after the push updated last.pt in
    place (before its sidecar): the push sends last.pt once more as it is now, then its
    sidecar (attacksync34). That second update, too, comes after the sidecar vouches for the
    copy there and the one coming: a reader at every step finds a pair, epoch 1's, 2's or
    3's, and the push ends with 3's."""
    from drivestage.remote import open_store
    from drivestage.upload_tree import push

    team = _team(emulator)
    src = tmp_path / "run"
    one = _save(str(src), 1, T0)
    push(str(src), DEST)
    two = _save(str(src), 2, T0 + 60)
    store, where = open_store(DEST)
    real = store.upload
    seen: list = []
    three: list[bytes] = []

    def upload(local_path, folder, name, **kw):
        got = real(local_path, folder, name, **kw)
        seen.append((name, _resumed(tmp_path, str(len(seen)))))
        if name == "last.pt" and not three:   # the loop saves again now
            three.append(_save(str(src), 3, T0 + 120))
        return got

    store.upload = upload
    push(str(src), (store, where), jobs=1, chunk_size=CHUNK)

    assert three
    for at, got in seen:
        assert got in ((md5(one), 1), (md5(two), 2), (md5(three[0]), 3)), (at, seen)
    assert [at for at, _ in seen] == ["last.json", "last.pt", "last.json", "last.pt",
                                      "last.json"]
    [pt], [side] = _live(emulator, team, "last.pt"), _live(emulator, team, "last.json")
    assert (pt["md5Checksum"], json.loads(emulator.read_bytes(side["id"]))["md5"]) == (
        md5(three[0]), md5(three[0]))
    assert _resumed(tmp_path, "end") == (md5(three[0]), 3)


def test_two_contributors_pushes_killed_in_a_row_leave_a_verified_pair(
        emulator, drive_env, local_state, tmp_path):
    """Killed once last.pt was updated (the sidecar vouching for the old copy and the one
    now there), the loop saves again, and the next push is killed after its first write:
    that write vouches for the copy there as the sidecar described it (epoch 2: its "coming"
    entry), and the one coming (epoch 3). A resume finds epoch 2's pair, then, after a push
    that ends, epoch 3's."""
    from drivestage.upload_tree import push

    team = _team(emulator)
    src = tmp_path / "run"
    _save(str(src), 1, T0)
    push(str(src), DEST)
    two = _save(str(src), 2, T0 + 60)
    three = b""
    for at in ("after2", "after1"):
        proc = cli_server().run([str(src), DEST, at], script=_KILLED, text=True, timeout=120,
                                cwd=str(tmp_path))
        assert proc.returncode == -9, proc.stdout + proc.stderr
        assert _resumed(tmp_path, at) == (md5(two), 2)
        three = three or _save(str(src), 3, T0 + 120)
    [side] = _live(emulator, team, "last.json")
    body = json.loads(emulator.read_bytes(side["id"]))
    assert (body["md5"], body["epoch"], body["coming"]["md5"], body["coming"]["epoch"]) == (
        md5(two), 2, md5(three), 3)
    push(str(src), DEST)
    assert _resumed(tmp_path, "end") == (md5(three), 3)
