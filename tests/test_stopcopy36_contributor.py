"""stopcopy36: a stop's save sent alone (``DriveFolder.send_alone``: the copy a stop wrote
outside a slow or hung run folder, or sent from memory) into a shared drive where this
account is only a Contributor (it adds and edits, never trashes nor deletes). The new pair
went beside the older pair of its names, whose removal Drive refuses: one more pair of
those names at every such stop, for good (quota, and every later listing carried them). Now
it updates the older pair of this run in place, its sidecar in two phases (first vouching
for the copy there and the one coming, then the checkpoint, then the sidecar of the new one
alone): one file of each name, and a verified pair at every step, a SIGKILL included. A
Manager's or a Content manager's send is as before, request for request. The real
PyDrive2 stack against the emulator; real checkpoint files."""
from __future__ import annotations

import json
import os
import tempfile

import pytest

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (the fork server, started before the leak check)

DEST = "drive:shared/Team/run"
NAME, SIDE = "autosave_00000003.pt", "autosave_00000003.json"
CHUNK = 256 << 10


def _team(emulator, role: str = "writer") -> str:
    team = emulator.add_shared_drive("Team", role=role)
    emulator.add_folder("run", drive_id=team)
    return team


def _pair(folder: str, *, run: str = "r1", weight: float = 0.0, saved: float = 1000.0,
          iteration: int = 3) -> str:
    """A stop's checkpoint (about 1 MiB: a kill can land mid-upload) and its sidecar."""
    import torch

    from trainer import checkpoint as ckpt

    os.makedirs(folder, exist_ok=True)
    state = {"format_version": ckpt.FORMAT_VERSION,
             "model": {"w": torch.full((1 << 18,), weight)}, "optimizer": {}, "epoch": 1,
             "iteration": iteration, "epoch_iteration": 1, "config": {}, "run": run}
    return ckpt.save_checkpoint(state, os.path.join(folder, NAME), saved=saved)


def _both(path: str) -> list[str]:
    from trainer import checkpoint as ckpt

    return [path, ckpt.sidecar_path(path)]


def _md5(path: str) -> str:
    from drivestage.localfs import file_md5

    return file_md5(path)


def _live(emulator, team: str) -> list[tuple[str, str]]:
    """(name, md5) of every file of the run folder's on the shared drive, trashed ones not."""
    return sorted((f["title"], f.get("md5Checksum", "")) for f in emulator.files()
                  if f.get("driveId") == team and not f["labels"]["trashed"]
                  and f["mimeType"] != "application/vnd.google-apps.folder")


def _pushed_earlier(tmp_path) -> str:
    """The earlier branch's stop at iteration 3, pushed by the run (the folder is marked as
    its run folder): the local checkpoint."""
    from trainer.drive import DriveFolder

    logs = str(tmp_path / "logs")
    old = _pair(logs)
    DriveFolder(DEST, logs).push()
    return old


def _stop(tag: str, weight: float, saved: float) -> str:
    return _pair(os.path.join(tempfile.gettempdir(), f"trainer-stop-{tag}"), weight=weight,
                 saved=saved)


def _verified(tmp_path) -> "tuple[str, float] | None":
    """What a resume from Drive takes: (md5 of the checkpoint's bytes, its sidecar's save
    time), the description being of those very bytes."""
    from trainer.drive import DriveFolder, newest_of_current_run

    chosen = newest_of_current_run(DriveFolder(DEST, str(tmp_path / "reader")).checkpoints())
    if chosen is None:
        return None
    assert chosen.sidecar.md5 == chosen.entry.md5
    return chosen.entry.md5, chosen.sidecar.saved


def test_a_contributors_stop_save_updates_the_older_pair_in_place(
        emulator, drive_env, local_state, tmp_path):
    """Two stops at that iteration (each resumed from an older checkpoint): one file of each
    name is left, the newest stop's, verified. Before: two, then three of each name."""
    from trainer.drive import DriveFolder

    team = _team(emulator)
    old = _pushed_earlier(tmp_path)
    ids = {f["title"]: f["id"] for f in emulator.files() if f.get("driveId") == team}
    drive = DriveFolder(DEST, str(tmp_path / "logs"))
    for n, (weight, saved) in enumerate([(1.0, 2000.0), (2.0, 3000.0)]):
        new = _stop(str(n), weight, saved)
        drive.send_alone(_both(new))
        assert _live(emulator, team) == sorted([(NAME, _md5(new)), (SIDE, _md5(_both(new)[1]))])
        assert _verified(tmp_path) == (_md5(new), saved)
    # (the same files, updated: their ids kept)
    assert {f["title"]: f["id"] for f in emulator.files() if f.get("driveId") == team and
            f["title"] in (NAME, SIDE)} == {NAME: ids[NAME], SIDE: ids[SIDE]}
    assert _md5(old) != _md5(new)


def test_a_reader_at_every_step_of_a_contributors_stop_save_finds_a_verified_pair(
        emulator, drive_env, local_state, tmp_path):
    """Before and after each upload, a resume from Drive finds the checkpoint with the
    description of its own bytes: the older stop's, then the new one's once there."""
    from trainer.drive import DriveFolder

    _team(emulator)
    old = _pushed_earlier(tmp_path)
    new = _stop("x", 1.0, 2000.0)
    drive = DriveFolder(DEST, str(tmp_path / "logs"))
    real, seen = drive._store.upload, []

    def upload(local_path, folder, name, **kw):
        seen.append((f"before {name}", _verified(tmp_path)))
        got = real(local_path, folder, name, **kw)
        seen.append((f"after {name}", _verified(tmp_path)))
        return got

    drive._store.upload = upload   # (a reader at each step; the upload is the real one)
    drive.send_alone(_both(new))
    for at, got in seen:
        assert got in ((_md5(old), 1000.0), (_md5(new), 2000.0)), (at, seen)
    assert [at for at, _ in seen if at.startswith("after")] == [
        f"after {SIDE}", f"after {NAME}", f"after {SIDE}"]
    assert seen[-1][1] == (_md5(new), 2000.0)


_KILLED = r"""
import os, signal, sys
from trainer.drive import DriveFolder

logs, dest, at, pt, side = sys.argv[1:6]
drive = DriveFolder(dest, logs)
real, calls = drive._store.upload, [0]

def upload(local_path, folder, name, **kw):
    calls[0] += 1
    if at == f"mid{calls[0]}":   # the first chunk of this upload sent: killed then
        def progress(n):
            os.kill(os.getpid(), signal.SIGKILL)
        kw["progress"] = progress
        kw["chunk_size"] = 256 << 10
    got = real(local_path, folder, name, **kw)
    if at == f"after{calls[0]}":   # Drive holds it; the stop never heard
        os.kill(os.getpid(), signal.SIGKILL)
    return got

drive._store.upload = upload
drive.send_alone([pt, side])
print("finished")
"""


@pytest.mark.parametrize("at", ["mid1", "after1", "mid2", "after2", "after3"])
def test_a_contributors_stop_save_killed_at_each_step_leaves_a_verified_pair(
        emulator, drive_env, local_state, tmp_path, at):
    """SIGKILL during or right after each write of the stop's save (the sidecar's first
    update, the checkpoint's, the sidecar's last): a resume finds a verified checkpoint (the
    older stop's or the new one's, with its own description), one file of each name; the
    next stop's save at that iteration leaves its own pair alone, one file of each name."""
    from trainer.drive import DriveFolder

    team = _team(emulator)
    old = _pushed_earlier(tmp_path)
    new = _stop("x", 1.0, 2000.0)
    proc = cli_server().run([str(tmp_path / "logs"), DEST, at, *_both(new)], script=_KILLED,
                            text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == -9, proc.stdout + proc.stderr
    got = _verified(tmp_path)
    assert got in ((_md5(old), 1000.0), (_md5(new), 2000.0))
    if at in ("after2", "after3"):
        assert got == (_md5(new), 2000.0)
    assert sorted(n for n, _ in _live(emulator, team)) == [SIDE, NAME]

    later = _stop("y", 2.0, 3000.0)
    DriveFolder(DEST, str(tmp_path / "logs")).send_alone(_both(later))
    assert _live(emulator, team) == sorted([(NAME, _md5(later)),
                                            (SIDE, _md5(_both(later)[1]))])
    assert _verified(tmp_path) == (_md5(later), 3000.0)
    [side] = [f for f in emulator.files() if f["title"] == SIDE]
    assert "coming" not in json.loads(emulator.read_bytes(side["id"]))


def test_a_contributors_stop_save_sent_again_after_a_kill_leaves_one_pair(
        emulator, drive_env, local_state, tmp_path):
    """Killed once the checkpoint was updated in place (the sidecar vouching for both), the
    same save is sent again (its bytes are on Drive already): only its sidecar goes, in
    place. Before: a second sidecar beside the first."""
    from trainer.drive import DriveFolder

    team = _team(emulator)
    _pushed_earlier(tmp_path)
    new = _stop("x", 1.0, 2000.0)
    proc = cli_server().run([str(tmp_path / "logs"), DEST, "after2", *_both(new)],
                            script=_KILLED, text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == -9, proc.stdout + proc.stderr
    DriveFolder(DEST, str(tmp_path / "logs")).send_alone(_both(new))
    assert _live(emulator, team) == sorted([(NAME, _md5(new)), (SIDE, _md5(_both(new)[1]))])
    assert _verified(tmp_path) == (_md5(new), 2000.0)


@pytest.mark.parametrize("role", ["organizer", "fileOrganizer", "writer"])
def test_the_requests_of_a_stop_save_replacing_the_older_pair_by_role(
        emulator, drive_env, local_state, tmp_path, role):
    """A Manager's or a Content manager's stop save sends a new pair beside the older one
    and removes the older (stopleft31): not one request more than before. A Contributor's
    updates it in place: one file of each name either way."""
    from trainer.drive import DriveFolder

    team = _team(emulator, role)
    _pushed_earlier(tmp_path)
    new = _stop("x", 1.0, 2000.0)
    drive = DriveFolder(DEST, str(tmp_path / "logs"))
    drive.check_writable()   # (the folders known: the count is of the send alone)
    emulator.clear_requests()
    drive.send_alone(_both(new))
    sent = [r for r in emulator.requests if r.method in ("POST", "PUT") and "upload" in r.path]
    assert (len(emulator.requests), len(sent)) == COUNTS[role]
    assert _live(emulator, team) == sorted([(NAME, _md5(new)), (SIDE, _md5(_both(new)[1]))])


#: (requests, upload requests) of the send; "writer" before stopcopy36: (12, 4), two pairs left
COUNTS = {"organizer": (16, 4), "fileOrganizer": (18, 4), "writer": (14, 6)}


def _state(weight: float) -> dict:
    import torch

    from trainer import checkpoint as ckpt

    return {"format_version": ckpt.FORMAT_VERSION,
            "model": {"w": torch.full((1 << 18,), weight)}, "optimizer": {}, "epoch": 1,
            "iteration": 3, "epoch_iteration": 1, "config": {}, "run": "r1"}


def test_a_contributors_stop_written_elsewhere_and_one_sent_from_memory_leave_one_pair(
        emulator, drive_env, local_state, tmp_path):
    """The stop's own ways: its save written into a temporary folder and sent from there
    (:class:`trainer.stop_save.Elsewhere`), then one sent from memory (no disk took it:
    :func:`trainer.memory_send.send`, names of its own): each leaves one file of each name,
    its own bytes verified there. Before: two, then three of each."""
    from trainer import memory_send
    from trainer.drive import DriveFolder
    from trainer.stop_save import Elsewhere

    team = _team(emulator)
    _pushed_earlier(tmp_path)
    drive = DriveFolder(DEST, str(tmp_path / "logs"))
    other = Elsewhere(_state(1.0), NAME, {}, 2000.0, drive)
    assert other.ended.wait(60) and other.error is None and other.path is not None
    assert sorted(n for n, _ in _live(emulator, team)) == [SIDE, NAME]
    assert _verified(tmp_path)[1] == 2000.0
    memory_send.send(drive, _state(2.0), NAME, {}, 3000.0)
    assert sorted(n for n, _ in _live(emulator, team)) == [SIDE, NAME]
    md5, saved = _verified(tmp_path)
    assert saved == 3000.0 and (NAME, md5) in _live(emulator, team)


def test_a_pile_an_older_trainer_left_grows_no_more(emulator, drive_env, local_state,
                                                     tmp_path):
    """Two pairs of the name already there (what an older trainer's stop left beside the
    first, Drive refusing its removal): a stop now updates the newest pair in place, and
    reads as that stop's; no third pair, no failure on the copies it may not remove."""
    from trainer.drive import DriveFolder

    team = _team(emulator)
    _pushed_earlier(tmp_path)
    drive = DriveFolder(DEST, str(tmp_path / "logs"))
    store = drive._store
    folder = store.resolve(drive._path)
    second = _stop("a", 1.0, 2000.0)
    for path in _both(second):   # (the older trainer's send: new files beside the first)
        store.upload(path, folder, os.path.basename(path))
    assert len(_live(emulator, team)) == 4
    assert _verified(tmp_path) == (_md5(second), 2000.0)
    new = _stop("b", 2.0, 3000.0)
    drive.send_alone(_both(new))
    live = _live(emulator, team)
    assert len(live) == 4 and (NAME, _md5(new)) in live and (NAME, _md5(second)) not in live
    assert _verified(tmp_path) == (_md5(new), 3000.0)
