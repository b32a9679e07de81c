"""Messages of attacksync34's fixes (each heading of docs/troubleshooting.md shown)."""
from __future__ import annotations

import logging
import os

from _cli import run
from _drive_state import live_md5s
from _messages import renders, shown
from test_attackds29_run_folders import _save


@renders("could not be deleted permanently: Drive refused it in My Drive")
def test_a_refused_permanent_delete_in_my_drive_is_not_said_a_shared_drive_s(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    """``push exp1 drive:runs/exp1 --keep-last 1 --delete-permanently`` in My Drive, Drive
    refusing the old checkpoint's delete (a 403 a proxy or a hiccup gave): it went to the
    trash, as before, but the warning said it was "in a shared drive that needs the Manager
    role" and "this account is a Content manager" of a drive that does not exist. It says
    what happened in My Drive now."""
    from drivestage.drive import removal

    monkeypatch.setattr(removal, "_TRASH_WARNED", set())   # (said once per process)
    run_dir = tmp_path / "exp1"
    run_dir.mkdir()
    _save(str(run_dir), 1)
    code, _, err = run("push", str(run_dir), "drive:runs/exp1", "--keep-last", "1")
    assert code == 0, err
    for name in ("epoch_001.pt", "epoch_001.json"):
        os.remove(run_dir / name)
    _save(str(run_dir), 2)
    emulator.faults.inject(method="DELETE", path=r"/files/", status=403,
                           reason="insufficientFilePermissions", times=1)

    code, _, err = run("push", str(run_dir), "drive:runs/exp1", "--keep-last", "1",
                       "--delete-permanently")

    assert code == 0, err
    warned = [line for line in err.splitlines() if line.startswith("WARNING")]
    assert warned == [
        "WARNING drivestage.drive.store: drive:runs/exp1/epoch_001.pt could not be deleted "
        "permanently: Drive refused it in My Drive (HTTP 403 insufficientFilePermissions), "
        "where its owner may delete it. Moved to the trash instead (Drive empties it after "
        "30 days; until then it counts toward the storage quota), as is any item Drive "
        "refuses so for the rest of this run. Check that this account owns the files of "
        "the folder, or pass --use-trash to ask for the trash."]
    shown("could not be deleted permanently: Drive refused it in My Drive", warned[0])
    assert set(live_md5s(emulator, "runs/exp1")) == {"epoch_002.pt", "epoch_002.json"}
    assert {f["title"] for f in emulator.files() if f["labels"]["trashed"]} == {"epoch_001.pt"}


def test_a_shared_drive_reached_through_a_shortcut_is_still_said_a_shared_drive(
        emulator, drive_env, local_state, caplog, monkeypatch):
    """``prune drive:link`` (``link``, in My Drive, a shortcut to a shared drive's folder
    where this account is a Content manager): the store is My Drive's, the files the shared
    drive's; the warning speaks of the shared drive's roles, as its files' answers say."""
    from drivestage.drive import removal
    from drivestage.pruning import prune
    from drivestage.retention import RetentionPolicy

    monkeypatch.setattr(removal, "_TRASH_WARNED", set())
    team = emulator.add_shared_drive("Team", role="fileOrganizer")
    for i in range(1, 4):
        emulator.add_file(f"run/epoch_{i:03d}.pt", bytes([i]) * 10, drive_id=team)
    emulator.add_shortcut("link", emulator.find("run", drive_id=team)["id"])
    caplog.set_level(logging.WARNING, logger="drivestage")

    prune("drive:link", RetentionPolicy(keep_last=1))

    warned = [r.getMessage() for r in caplog.records if "permanently" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith(
        "drive:link/epoch_001.pt could not be deleted permanently: in a shared drive that "
        "needs the Manager role (organizer)"), warned
    trashed = {f["title"]: f["labels"]["trashed"] for f in emulator.files()
               if f.get("driveId") == team and f["title"].endswith(".pt")}
    assert trashed == {"epoch_001.pt": True, "epoch_002.pt": True, "epoch_003.pt": False}
