"""mount51: a folder push may not read (EACCES), remembered where that is a mount's doing.

pushremount49 remembered every folder a push could not read, EACCES too (attackint49's open
question): a folder made unreadable on a local disk (``chmod 000``: the owner's choice), then
emptied and made readable again, was refused as "a mount point not mounted again?" at every
push until ``--emptied``. On a FUSE or network mount the refusal is the mount's (credentials
expired, a FUSE mount without ``allow_other`` read by another user) and the mount may be undone
next: remembered, and the line says so instead of ``chmod``."""
from __future__ import annotations

import errno

from _drivemount import OPENDIR, FullDriveMount
from test_pushread48_unread import live
from test_pushremount49_memory import (_memory_of_this_process_none,  # noqa: F401
                                       _errnos, _push, mounted)


def test_a_folder_chmod_000_on_a_local_disk_is_not_remembered(
        emulator, drive_env, local_state, tmp_path):
    """Unreadable (the walk's EACCES, as a push run by its user finds it: kept, said,
    test_pushread48_unread), then emptied and readable again: the next push takes it as it
    reads, ``--delete`` removes its copies (on main: remembered, refused, exit 1)."""
    from drivestage import unread_memory
    from drivestage.unread import Unread

    src = tmp_path / "src"
    (src / "shut").mkdir(parents=True)
    emulator.add_file("runs/x/shut/b.txt", b"b")
    walked = ["", "shut"]
    again = unread_memory.empty_again(
        walked, [], [], [Unread("shut", str(src / "shut"), errno.EACCES, True)], str(src))
    assert again == [] and not (tmp_path / "state" / "unread.json").exists()
    code, _out, err = _push(tmp_path)
    assert code == 0, err
    assert live(emulator) == {}


def test_a_fuse_mount_that_refuses_this_user_is_remembered_and_said(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    """The mount answers EACCES (on main: "let this user read it (chmod -R u+rX …)", which
    no chmod here mends); remembered, as a mount's that may be undone next."""
    mnt = tmp_path / "src" / "mnt"
    mounted.fail[OPENDIR] = errno.EACCES
    code, _out, err = _push(tmp_path)
    assert code == 1, err
    assert [line for line in err.splitlines() if line.startswith("ERROR")][0] == (
        f"ERROR drivestage.upload_tree: could not read {mnt} (Permission denied): not sent, "
        "and nothing at drive:runs/x/mnt or under it on Drive is removed or replaced this "
        f"time; it is on the fuse.drive mount at {mnt}, which refuses this user (credentials "
        "expired? mounted without allow_other?): let this user in again, then push again, "
        "or leave it out: --exclude 'mnt'"), err
    assert _errnos(tmp_path) == {str(mnt): errno.EACCES}
