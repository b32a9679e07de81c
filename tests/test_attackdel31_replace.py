"""attackdel31: what a stop's save sent alone (``DriveFolder.send_alone``) removes on Drive.
Two trainer processes of one run (two machines resumed from the same checkpoint, one
``drive.logs``) that stop at the same iteration each send ``autosave_<iteration>.pt`` alone:
each took the other's pair, verified and just made, for the older one it replaces, and
removed it: Drive was left with neither. Now only a pair made on Drive before this one (by
Drive's own clock, then by id: every process orders them alike) is replaced. The real
PyDrive2 stack against the emulator; real checkpoint files."""
from __future__ import annotations

import os
import tempfile

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)

from test_stopleft31_replace import SPEC, NAME, _both, _on_drive, _pair, _pushed_earlier


def test_two_processes_of_one_run_sending_the_same_name_alone_leave_one_pair(
        emulator, drive_env, local_state, store, tmp_path):
    """A's listing (after its sidecar) comes once B sent its pair and replaced A's: A must not
    take B's for an older one. One verified pair of that name is left, whichever."""
    from trainer.drive import DriveFolder, newest_of_current_run

    _pushed_earlier(tmp_path)   # (the run folder is the run's, marked: replacing is allowed)
    a_path = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-a"), weight=1.0,
                   saved=2000.0)
    b_path = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-b"), weight=2.0,
                   saved=1990.0)   # (B's clock a little behind)
    a = DriveFolder(SPEC, str(tmp_path / "logs"))
    b = DriveFolder(SPEC, str(tmp_path / "logs-b"))
    lists = a._store.list
    uploads: list[str] = []
    upload = a._store.upload

    def a_upload(path, folder, name, **kwargs):
        uploads.append(name)
        return upload(path, folder, name, **kwargs)

    def a_list(folder):
        if uploads == [NAME, os.path.basename(_both(a_path)[1])]:
            uploads.append("b")   # (once: B's whole send between A's sidecar and A's look)
            b.send_alone(_both(b_path))
        return lists(folder)

    a._store.upload, a._store.list = a_upload, a_list
    a.send_alone(_both(a_path))
    left = _on_drive(store)
    assert [n for n, _ in left] == sorted([NAME, os.path.basename(_both(a_path)[1])]), left
    newest = newest_of_current_run(a.checkpoints())
    assert newest is not None and newest.name == NAME and newest.sidecar.saved in (1990.0, 2000.0)


def test_two_copies_of_the_same_bytes_sent_at_once_leave_one_checkpoint(
        emulator, drive_env, local_state, store, tmp_path):
    """Same bytes (two processes of one run resumed from one checkpoint: training on a CPU
    is deterministic), sent alone at once; B's first listing lags (A's new checkpoint not in
    it yet), so both upload. Each removed the other's as a twin: no checkpoint was left, two
    sidecars vouching for nothing. Now the copy made first stays, in both processes' eyes."""
    from trainer.drive import DriveFolder, newest_of_current_run

    _pushed_earlier(tmp_path)
    a_path = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-a"), weight=1.0,
                   saved=2000.0)
    b_path = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-b"), weight=1.0,
                   saved=2001.0)   # (the same state; its sidecar says another save time)
    a = DriveFolder(SPEC, str(tmp_path / "logs"))
    b = DriveFolder(SPEC, str(tmp_path / "logs-b"))
    a_ids: list[str] = []
    upload, a_list, b_list = a._store.upload, a._store.list, b._store.list

    def a_upload(path, folder, name, **kwargs):
        got = upload(path, folder, name, **kwargs)
        if not a_ids:
            a_ids.append(got.id)
            b.send_alone(_both(b_path))   # (all of B's, before A's next look)
        return got

    def lagging(folder):
        seen = b_list(folder)
        if len(a_ids) == 1:   # (B's first look: A's checkpoint is not listed yet)
            a_ids.append("b looked")
            return [e for e in seen if e.id != a_ids[0]]
        return seen

    a._store.upload, b._store.list = a_upload, lagging
    a.send_alone(_both(a_path))
    newest = newest_of_current_run(a.checkpoints())
    assert newest is not None and newest.name == NAME, _on_drive(store)
    assert [n for n, _ in _on_drive(store)] == sorted([NAME, _both(NAME)[1]]), _on_drive(store)


class _Killed(BaseException):
    """The process killed at that request (nothing after it runs: no except, no finally of
    ours can catch a BaseException it does not name)."""


def test_a_kill_at_each_request_of_a_replacing_send_leaves_a_verified_checkpoint(
        emulator, drive_env, local_state, store, tmp_path):
    """A SIGKILL before each request of ``send_alone`` that replaces an older pair (uploads,
    listings, the old sidecar's read, each removal): Drive always holds a checkpoint of that
    name its sidecar vouches for, the old one or the new; sent again, the new pair alone."""
    from drivestage.localfs import file_md5
    from trainer.drive import DriveFolder, newest_of_current_run

    old = _pushed_earlier(tmp_path)
    new = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-x"), weight=1.0, saved=2000.0)
    md5s = {file_md5(old), file_md5(new)}
    calls = ("upload", "list", "read_range", "delete", "take_out")   # (removals: take_out)
    # Representative moments (of 9): the new checkpoint verified, the new sidecar verified,
    # the old sidecar removed, then none (the whole send). Every one passed by hand.
    for k in (3, 6, 8, 0):
        folder = store.resolve("Models/sl31/run")
        for e in store.list(folder):   # (each moment from the same start: the old pair alone)
            store.delete(e)
        for p in _both(old):
            store.upload(p, folder, os.path.basename(p))
        drive = DriveFolder(SPEC, str(tmp_path / "logs"))
        count = [0]

        def killing(real):
            def call(*args, **kwargs):
                count[0] += 1
                if count[0] == k:
                    raise _Killed
                return real(*args, **kwargs)
            return call

        for name in calls:
            setattr(drive._store, name, killing(getattr(drive._store, name)))
        try:
            drive.send_alone(_both(new))
            assert k == 0
        except _Killed:
            assert k != 0
        newest = newest_of_current_run(DriveFolder(SPEC, str(tmp_path / "logs")).checkpoints())
        assert newest is not None and newest.name == NAME and \
            (newest.entry.md5 or "").lower() in md5s, (k, _on_drive(store))
    assert _on_drive(store) == sorted(
        (os.path.basename(p), file_md5(p)) for p in _both(new)), _on_drive(store)
