"""attackr248: a mount in SRC that a mirror could not read (ENOTCONN: the program behind it
ended) and that then reads as an empty folder (unmounted: ``fusermount -u``, Colab's
``drive.mount`` undone, the mount point left as the empty folder it was made as).

pushread48 made the first period keep everything under the path on Drive. The next period of
the *same* mirror read the path as a folder with nothing in it and ``--delete`` took every
file under it on Drive to the trash: the copies the dead mount's files had there, the only
ones left (what the mount held is gone with it). The mirror had seen the path unread one
period before; an empty mount point is not a folder the user emptied."""
from __future__ import annotations

import pytest

from _cli import run
from _drivemount import FullDriveMount, _mounted
from test_pushread48_unread import live, mounted  # noqa: F401  (mounted: a fixture)


@pytest.mark.timeout(60)
def test_a_mount_unread_then_empty_keeps_its_copies_on_drive_in_the_same_mirror(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount, caplog):
    from drivestage.errors import MirrorError
    from drivestage.mirror import Mirror

    for rel, data in {"mnt/m.txt": b"mounted, old", "mnt/n.txt": b"n", "gone.txt": b"g"}.items():
        emulator.add_file(f"runs/x/{rel}", data)
    mounted.disconnect()   # every call into the mount: ENOTCONN
    mirror = Mirror(str(tmp_path / "src"), "drive:runs/x", delete=True, every=3600).start()
    try:
        with pytest.raises(MirrorError, match="1 path of SRC could not be read"):
            mirror.flush(timeout=30)
        kept = {"a.txt": b"a", "mnt/m.txt": b"mounted, old", "mnt/n.txt": b"n"}
        assert live(emulator) == kept
        mounted.stop()   # unmounted: the mount point reads as the empty folder it is
        assert list((tmp_path / "src" / "mnt").iterdir()) == []
        with pytest.raises(MirrorError, match="1 path of SRC could not be read"):
            mirror.flush(timeout=30)
        assert live(emulator) == kept
    finally:
        mirror.stop(timeout=30, flush=False)
    said = [r.getMessage() for r in caplog.records if "reads as an empty folder" in r.getMessage()]
    assert said == [f"{tmp_path}/src/mnt reads as an empty folder where the last push could not "
                    "read it (Transport endpoint is not connected): a mount point not mounted "
                    "again? Not sent, and nothing at drive:runs/x/mnt or under it on Drive is "
                    "removed this time; mount it again, then push again; if it was emptied on "
                    f"purpose, push once with --emptied {tmp_path}/src/mnt"], said


@pytest.mark.slow
def test_a_mount_unread_then_empty_keeps_its_copies_on_drive_across_cli_pushes(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    """A cron job's pushes: one over the stopped mount (kept, exit 1), the mount undone, the
    next ``push --delete`` (a new process) trashed every file under it on Drive (no memory
    across processes; kept since pushremount49: drivestage/unread_memory.py)."""
    import subprocess
    import sys

    from _cli import child_env

    def run(*args: str) -> tuple[int, str, str]:   # (a new process each, as cron's)
        done = subprocess.run([sys.executable, "-m", "drivestage", *args],
                              env=child_env(emulator), capture_output=True, text=True,
                              timeout=120)
        return done.returncode, done.stdout, done.stderr

    for rel, data in {"mnt/m.txt": b"mounted, old", "mnt/n.txt": b"n"}.items():
        emulator.add_file(f"runs/x/{rel}", data)
    mounted.disconnect()
    code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
    assert code == 1, err[-3000:]
    mounted.stop()
    code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
    assert live(emulator) == {"a.txt": b"a", "mnt/m.txt": b"mounted, old", "mnt/n.txt": b"n"}
    # (pushremount49: remembered in the state folder; said, exit 1, until --emptied names it)
    assert code == 1 and f"{tmp_path}/src/mnt reads as an empty folder where the last push " \
        "could not read it (Transport endpoint is not connected)" in err, err[-3000:]


@pytest.fixture
def src_mounted(tmp_path):
    """SRC (tmp_path/src) is itself a writable FUSE mount, with a run's files in it."""
    for mount in _mounted(tmp_path / "src", writable=True):
        for name in ("epoch_001.pt", "epoch_002.pt", "train.log"):
            (mount.point / name).write_bytes(name.encode())
        yield mount


@pytest.mark.timeout(60)
def test_a_src_mount_unread_then_empty_is_not_emptied_on_drive_by_the_same_mirror(
        emulator, drive_env, local_state, tmp_path, src_mounted: FullDriveMount):
    """SRC itself is the mount (a mirror of /content/drive/... or of a FUSE run folder): the
    period over the stopped mount pushes nothing; once unmounted SRC reads empty, and the
    next period's ``--delete`` took all of the run's files on Drive (under --delete's
    default limit of 10 items: a small run's whole folder)."""
    from drivestage.errors import MirrorError
    from drivestage.mirror import Mirror

    on_drive = {"epoch_001.pt": b"one", "epoch_002.pt": b"two", "train.log": b"log"}
    for rel, data in on_drive.items():
        emulator.add_file(f"runs/x/{rel}", data)
    src_mounted.disconnect()
    mirror = Mirror(str(tmp_path / "src"), "drive:runs/x", delete=True, every=3600).start()
    try:
        # (its stat: ENOTCONN; 7e563002: "… is not a local folder; give the folder to push")
        with pytest.raises(MirrorError, match=r"could not read SRC .*src \(Transport endpoint "
                                              r"is not connected\): nothing was pushed$"):
            mirror.flush(timeout=30)
        src_mounted.stop()
        assert list((tmp_path / "src").iterdir()) == []
        with pytest.raises(MirrorError, match=r"SRC .*src reads as an empty folder where the "
                                              r"last push could not read it \(Transport "
                                              r"endpoint is not connected\): a mount point not "
                                              r"mounted again\? Nothing was pushed"):
            mirror.flush(timeout=30)
        assert live(emulator) == on_drive
        # A file written into the unmounted mount point: what SRC holds is the disk beneath,
        # not the run (mount50: it was pushed, and --delete took the run's files on Drive).
        (tmp_path / "src" / "epoch_003.pt").write_bytes(b"three")
        with pytest.raises(MirrorError, match=r"SRC .*src holds what is on the disk beneath: "
                                              r"the mount at .*src that the last push could "
                                              r"not read \(Transport endpoint is not "
                                              r"connected\) is not mounted now. Nothing was "
                                              r"pushed"):
            mirror.flush(timeout=30)
        assert live(emulator) == on_drive
        # (a run started anew there on purpose: the user says so, the mirror running)
        assert run("unread", "forget", str(tmp_path / "src"))[0] == 0
        mirror.flush(timeout=30)   # (pushed, and --delete acts again)
        assert live(emulator) == {"epoch_003.pt": b"three"}
    finally:
        mirror.stop(timeout=30, flush=False)
