"""A path of SRC that push could not read is never taken as absent. The walk skipped a
file or folder whose stat failed (``except OSError: continue``: EACCES in a folder without
x, EIO, a FUSE mount that stopped: ENOTCONN) without a word, exit 0, and ``--delete`` then
took its copies on Drive to the trash: a read error deleted the only remote copy. A folder
without r, or a file unreadable when it came to be sent, ended the push in a traceback,
with nothing of ``--delete`` done. Now each such path is said in one line (what failed,
what to do), everything else is sent and deleted as asked, nothing on Drive at or under an
unread path is removed or replaced, and the push exits 1 at the end; a mirror's period
fails so (the next retries) and deletes nothing under it.

Root reads everything: the push runs as a child whose bounding set lacks
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (``setpriv``), as any user's would; EIO and
ENOTCONN come from a FUSE mount in SRC (tests/_drivemount.py)."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

import pytest

from _cli import child_env, run
from _drivemount import OPENDIR, READ, FullDriveMount, _mounted
from _messages import error_line

DROP = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def live(emulator, top: str = "runs/x") -> dict[str, bytes]:
    """The files on Drive under ``top`` not in the trash: path below it -> bytes."""
    files = emulator.files()
    by_id = {f["id"]: f for f in files}

    def path(f) -> str:
        names = [f["title"]]
        while f["parents"] and f["parents"][0]["id"] in by_id:
            f = by_id[f["parents"][0]["id"]]
            names.append(f["title"])
        return "/".join(reversed(names))

    def trashed(f) -> bool:
        while True:
            if f["labels"]["trashed"]:
                return True
            if not f["parents"] or f["parents"][0]["id"] not in by_id:
                return False
            f = by_id[f["parents"][0]["id"]]

    out = {}
    for f in files:
        if f["mimeType"] != "application/vnd.google-apps.folder" and not trashed(f):
            p = path(f)
            if p.startswith(top + "/"):
                out[p[len(top) + 1:]] = emulator.read_bytes(f["id"])
    return out


def push_unprivileged(emulator, *args: str) -> tuple[int, str]:
    """``drivestage push ARGS`` in a child that file modes bind (no DAC capabilities)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (to drop the capabilities that read everything)")
    if subprocess.run([*DROP, "true"], capture_output=True).returncode != 0:
        pytest.skip("setpriv cannot change the bounding set here")
    done = subprocess.run([*DROP, sys.executable, "-m", "drivestage", "push", *args],
                          env=child_env(emulator), capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


def lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("ERROR")]


def test_folders_it_cannot_read_keep_their_copies_on_drive_under_delete(
        emulator, drive_env, local_state, tmp_path):
    for rel, data in {"a.txt": b"old", "gone.txt": b"gone", "ro/d.txt": b"d",
                      "ro/old.txt": b"o", "shut/b.txt": b"b", "shut/c.txt": b"c"}.items():
        emulator.add_file(f"runs/x/{rel}", data)
    src = tmp_path / "src"
    for rel, data in {"a.txt": b"new", "ro/d.txt": b"d2", "shut/b.txt": b"b2"}.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    (src / "ro").chmod(0o444)     # listed, never entered: each name's stat fails (EACCES)
    (src / "shut").chmod(0o000)   # not even listed
    code, err = push_unprivileged(emulator, str(src), "drive:runs/x", "--delete")
    assert code == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    # Sent and deleted as asked, but for what is at or under the unread paths (ro was
    # listed: a name it lacks is absent, and goes).
    assert live(emulator) == {"a.txt": b"new", "ro/d.txt": b"d", "shut/b.txt": b"b",
                              "shut/c.txt": b"c"}
    assert lines(err) == [
        f"ERROR drivestage.upload_tree: could not read {src}/ro/d.txt (Permission denied): "
        "not sent, and nothing at drive:runs/x/ro/d.txt on Drive is removed or replaced this "
        f"time; let this user read it (chmod u+r {src}/ro/d.txt), then push again, or leave "
        "it out: --exclude 'ro/d.txt'",
        f"ERROR drivestage.upload_tree: could not read {src}/shut (Permission denied): not "
        "sent, and nothing at drive:runs/x/shut or under it on Drive is removed or replaced "
        f"this time; let this user read it (chmod -R u+rX {src}/shut), then push again, or "
        "leave it out: --exclude 'shut'"]
    assert error_line(err) == (
        "Error: 2 paths of SRC could not be read (the lines above name them): everything else "
        "was pushed, and nothing on Drive at or under them was removed or replaced; push "
        "again once they can be read")
    assert f"push {src} -> drive:runs/x, then failed: 1 uploaded (3 B), 0 unchanged, 2 deleted " \
           "(not local), 2 not read\n" in err, err[-2000:]


def test_files_it_cannot_open_when_sent_keep_their_copies_and_the_rest_goes(
        emulator, drive_env, local_state, tmp_path):
    """Found by the walk (a stat needs no read access), refused at the open: one of another
    size (sent), one of the same size (its md5 read first)."""
    for rel, data in {"grown.txt": b"old", "same.txt": b"old", "gone.txt": b"gone",
                      "ok.txt": b"ok"}.items():
        emulator.add_file(f"runs/x/{rel}", data)
    src = tmp_path / "src"
    src.mkdir()
    for rel, data in {"grown.txt": b"grown", "same.txt": b"new", "ok.txt": b"ok2"}.items():
        (src / rel).write_bytes(data)
    (src / "grown.txt").chmod(0)
    (src / "same.txt").chmod(0)
    code, err = push_unprivileged(emulator, str(src), "drive:runs/x", "--delete", "-j", "1")
    assert code == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert live(emulator) == {"grown.txt": b"old", "same.txt": b"old", "ok.txt": b"ok2"}
    assert lines(err) == [
        f"ERROR drivestage.upload_tree: could not read {src}/{name} (Permission denied): not "
        f"sent, and nothing at drive:runs/x/{name} on Drive is removed or replaced this time; "
        f"let this user read it (chmod u+r {src}/{name}), then push again, or leave it out: "
        f"--exclude '{name}'" for name in ("grown.txt", "same.txt")]
    assert error_line(err).startswith("Error: 2 paths of SRC could not be read")


@pytest.fixture
def mounted(tmp_path):
    """SRC (tmp_path/src) holding a writable FUSE mount at ``mnt`` with ``m.txt`` in it."""
    for mount in _mounted(tmp_path / "src" / "mnt", writable=True):
        (mount.point / "m.txt").write_bytes(b"mounted, new")
        (tmp_path / "src" / "a.txt").write_bytes(b"a")
        yield mount


@pytest.mark.parametrize("opcode", [READ, OPENDIR], ids=["read", "listing"])
def test_eio_from_a_mount_in_src_keeps_its_copies_under_delete(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount, opcode):
    for rel, data in {"mnt/m.txt": b"mounted, older", "mnt/n.txt": b"n",
                      "gone.txt": b"g"}.items():
        emulator.add_file(f"runs/x/{rel}", data)
    mounted.fail[opcode] = errno.EIO
    code, out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
    assert code == 1, err[-3000:]
    # (read: the mount's listing is read, and a name it lacks goes)
    kept = {"mnt/m.txt": b"mounted, older", **({} if opcode == READ else {"mnt/n.txt": b"n"})}
    assert live(emulator) == {"a.txt": b"a", **kept}
    what = "mnt/m.txt" if opcode == READ else "mnt"
    [line] = lines(err)
    assert line.startswith(f"ERROR drivestage.upload_tree: could not read {tmp_path}/src/"
                           f"{what} (Input/output error): not sent, and nothing at "
                           f"drive:runs/x/{what}"), line
    assert line.endswith(f"check the disk or mount it is on, then push again, or leave it "
                         f"out: --exclude '{what}'"), line
    assert error_line(err).startswith("Error: 1 path of SRC could not be read")


@pytest.mark.timeout(60)
def test_a_mirror_period_over_a_stopped_mount_fails_and_deletes_nothing_under_it(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount, caplog):
    from drivestage.errors import MirrorError
    from drivestage.mirror import Mirror

    for rel, data in {"mnt/m.txt": b"mounted, old", "gone.txt": b"g"}.items():
        emulator.add_file(f"runs/x/{rel}", data)
    mounted.disconnect()   # every call into the mount: ENOTCONN
    mirror = Mirror(str(tmp_path / "src"), "drive:runs/x", delete=True, every=3600).start()
    try:
        for _ in range(2):   # (the next period, asked for at once, fails alike)
            with pytest.raises(MirrorError, match="1 path of SRC could not be read"):
                mirror.flush(timeout=30)
            assert live(emulator) == {"a.txt": b"a", "mnt/m.txt": b"mounted, old"}
    finally:
        mirror.stop(timeout=30, flush=False)
    # The path's line once, not every period (nor the period's failure: mirror's rule).
    said = [r.getMessage() for r in caplog.records if "could not read" in r.getMessage()]
    assert said == [f"could not read {tmp_path}/src/mnt (Transport endpoint is not "
                    "connected): not sent, and nothing at drive:runs/x/mnt or under it on Drive is "
                    f"removed or replaced this time; mount {tmp_path}/src/mnt again, then push "
                    "again, or leave it out: --exclude 'mnt'"], said   # (the mount point named)


def test_a_file_deleted_between_the_walk_and_its_send_goes_from_drive_on_the_next_push(
        emulator, through, tmp_path):
    """Gone (ENOENT) is not unread: a file the user deleted on purpose. Its copy on Drive
    stays while the walk that found it is the one acted on (exit 0), and the next push's walk,
    which sees it absent, removes it with --delete."""
    from _swaps import once_at

    for rel, data in {"a.txt": b"old a", "b.txt": b"old b"}.items():
        emulator.add_file(f"runs/x/{rel}", data)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"new a!")
    (src / "b.txt").write_bytes(b"new b!")
    done = once_at(through, "PUT", r"^/upload/drive/v2/files",
                   lambda: (src / "b.txt").unlink())   # (a.txt's upload: sorted, one at once)
    code, out, err = run("push", str(src), "drive:runs/x", "--delete", "-j", "1")
    assert done and code == 0, err[-3000:]
    assert live(emulator) == {"a.txt": b"new a!", "b.txt": b"old b"}
    code, out, err = run("push", str(src), "drive:runs/x", "--delete")
    assert code == 0, err[-3000:]
    assert live(emulator) == {"a.txt": b"new a!"}


def test_past_ten_unread_paths_the_rest_are_counted(emulator, drive_env, local_state, tmp_path,
                                                     mounted: FullDriveMount):
    for n in range(12):
        (mounted.point / f"f{n:02}.txt").write_bytes(b"x")
    mounted.fail[READ] = errno.EIO
    code, out, err = run("push", str(tmp_path / "src"), "drive:runs/x")
    assert code == 1, err[-3000:]
    said = lines(err)
    assert [line.split(" (", 1)[0] for line in said[:10]] == [
        f"ERROR drivestage.upload_tree: could not read {tmp_path}/src/mnt/f{n:02}.txt"
        for n in range(10)]
    assert said[10:] == ["ERROR drivestage.upload_tree: ... and 3 more paths of SRC that "
                         "could not be read"]   # (f10, f11, m.txt)
    assert error_line(err).startswith("Error: 13 paths of SRC could not be read")
    assert live(emulator) == {"a.txt": b"a"}


def test_a_src_that_cannot_be_listed_pushes_nothing(emulator, drive_env, local_state,
                                                    mounted: FullDriveMount):
    emulator.add_file("runs/x/m.txt", b"m")
    mounted.fail[OPENDIR] = errno.EIO
    code, out, err = run("push", str(mounted.point), "drive:runs/x", "--delete")
    assert (code, error_line(err)) == (1, f"Error: could not read SRC {mounted.point} "
                                          "(Input/output error): nothing was pushed")
    assert live(emulator) == {"m.txt": b"m"}
