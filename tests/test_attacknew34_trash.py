"""attacknew34: a directory DEST's trash (``DEST/.drivestage-trash``) was made with
``os.makedirs`` and filled with ``rename``, both following links: a link planted as the
trash, or as a folder in it, took ``push --delete``'s removals outside DEST; and a file in the
trash where a folder was wanted (an earlier push trashed the file ``sub``, a folder ``sub``
is removed now) failed the push with a traceback. A trash that is a link is refused in one
line, before anything moves; a link or file in it is passed by for a numbered name."""
from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess

import pytest

from _cli import run

TRASH = ".drivestage-trash"


def _tree(tmp_path):
    src, dest, outside = tmp_path / "src", tmp_path / "nas" / "logs", tmp_path / "outside"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("a\n")
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "old.txt").write_text("old\n")
    outside.mkdir()
    return src, dest, outside


def test_a_trash_that_is_a_link_is_refused_and_nothing_leaves_dest(local_state, tmp_path):
    src, dest, outside = _tree(tmp_path)
    os.symlink(outside, dest / TRASH)

    code, _, err = run("push", str(src), str(dest), "--delete")

    assert code == 1, err
    assert err.splitlines()[-1] == (
        f"Error: {dest / TRASH} is a link or a file, not drivestage's trash folder; remove or "
        "rename it (drivestage moves what --delete and prune remove into it)")
    assert os.listdir(outside) == []
    assert (dest / "sub" / "old.txt").read_text() == "old\n"


def test_a_link_in_the_trash_is_passed_by(local_state, tmp_path):
    src, dest, outside = _tree(tmp_path)
    (dest / TRASH).mkdir()
    os.symlink(outside, dest / TRASH / "sub")

    code, _, err = run("push", str(src), str(dest), "--delete")

    assert code == 0, err
    assert os.listdir(outside) == []
    assert (dest / TRASH / "sub.~1~" / "old.txt").read_text() == "old\n"
    assert not (dest / "sub" / "old.txt").exists()


def test_a_trashed_file_where_a_folder_is_wanted_is_passed_by(local_state, tmp_path):
    src, dest, _ = _tree(tmp_path)
    (dest / TRASH).mkdir()
    (dest / TRASH / "sub").write_text("an earlier push's file sub\n")

    code, _, err = run("push", str(src), str(dest), "--delete")

    assert code == 0, err
    assert (dest / TRASH / "sub").read_text() == "an earlier push's file sub\n"
    assert (dest / TRASH / "sub.~1~" / "old.txt").read_text() == "old\n"


@pytest.fixture
def mounted(tmp_path):
    """A tmpfs mounted at ``nas/logs/mnt`` (skipped where it cannot be: not root)."""
    mnt = tmp_path / "nas" / "logs" / "mnt"
    mnt.mkdir(parents=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    made = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mnt)], capture_output=True,
                          text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"tmpfs cannot be mounted here: {made.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.parametrize("src_has_mnt", [True, False], ids=["a-file-in-it", "the-mount-point"])
def test_a_mount_in_dest_is_said_in_one_line(local_state, tmp_path, mounted, src_has_mnt):
    """What lies on a filesystem mounted in DEST cannot be renamed into the trash (EXDEV; the
    mount point itself: EBUSY): the push failed with a traceback."""
    src, dest = tmp_path / "src", tmp_path / "nas" / "logs"
    (src / "mnt").mkdir(parents=True)
    if src_has_mnt:
        (src / "mnt" / "keep.txt").write_text("k\n")
    else:
        (src / "other.txt").write_text("o\n")
        os.rmdir(src / "mnt")
    (mounted / "old.txt").write_text("old\n")
    what = mounted / "old.txt" if src_has_mnt else mounted

    code, _, err = run("push", str(src), str(dest), "--delete")

    assert code == 1, err
    reason = os.strerror(errno.EXDEV if src_has_mnt else errno.EBUSY)
    assert err.splitlines()[-1] == (
        f"Error: cannot move {what} to the trash {dest / TRASH} ({reason}): a mount point, "
        "or a file on another filesystem mounted in DEST, cannot be moved there; remove it "
        "yourself")
    assert (mounted / "old.txt").read_text() == "old\n"


def test_a_trash_folder_is_no_more_open_than_the_folder_it_stands_for(local_state, tmp_path):
    """A file trashed from a 0700 folder went into a trash folder made 0755: other users of
    the shared disk could read what its folder had kept from them."""
    src, dest, _ = _tree(tmp_path)
    (src / "private").mkdir()
    (src / "private" / "kept.txt").write_text("k\n")
    (dest / "private").mkdir(mode=0o700)
    os.chmod(dest / "private", 0o700)
    (dest / "private" / "secret.txt").write_text("s\n")

    code, _, err = run("push", str(src), str(dest), "--delete")

    assert code == 0, err
    assert (dest / TRASH / "private" / "secret.txt").read_text() == "s\n"
    assert stat.S_IMODE(os.stat(dest / TRASH / "private").st_mode) == 0o700


def test_a_pull_of_the_trash_says_how_to_get_its_files_back(local_state, tmp_path):
    """``pull /nas/logs/.drivestage-trash ./restored`` said the name "is where drivestage
    keeps its stamps and locks ...; rename that item on Drive": a Drive it never was on."""
    dest = tmp_path / "nas" / "logs"
    (dest / TRASH).mkdir(parents=True)
    (dest / TRASH / "epoch_001.pt").write_bytes(b"one")

    code, _, err = run("pull", str(dest / TRASH), str(tmp_path / "restored"))

    assert code == 2, err
    assert err.splitlines()[-1] == (
        f"Error: {dest / TRASH}: {TRASH} is a local DEST's trash (what push --delete and "
        "prune --use-trash moved there), a name drivestage keeps for itself; copy what you "
        "need out of it with cp or mv, or pull its files one at a time")
    code, _, err = run("pull", str(dest / TRASH / "epoch_001.pt"), str(tmp_path / "restored"))
    assert code == 0, err
    assert (tmp_path / "restored" / "epoch_001.pt").read_bytes() == b"one"


@pytest.mark.parametrize("how", ["--delete", "--delete-permanently"])
def test_a_read_only_dest_is_said_in_one_line(local_state, tmp_path, mounted, how):
    """A DEST the disk does not let this user write (a read-only export, another user's
    folder): ``--delete`` (and ``prune``) failed with a traceback (``OSError: [Errno 30]
    Read-only file system``)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "kept.txt").write_text("k\n")
    (mounted / "kept.txt").write_text("k\n")
    (mounted / "old.txt").write_text("old\n")
    subprocess.run(["mount", "-o", "remount,ro", str(mounted)], check=True)

    code, _, err = run("push", str(src), str(mounted), how)

    assert code == 1, err
    verb = "move" if how == "--delete" else "delete"
    where = " to the trash" if how == "--delete" else ""
    assert err.splitlines()[-1] == (
        f"Error: cannot {verb} {mounted / 'old.txt'}{where} ({os.strerror(errno.EROFS)}): "
        "check that this user may write there")
    assert (mounted / "old.txt").read_text() == "old\n"


def test_a_read_only_folders_twin_in_the_trash_is_this_users_to_write(local_state, tmp_path):
    """Each trash folder takes its twin's bits for others, never fewer for this user: a twin
    made 0555 as its folder is would refuse (to anyone but root) what is trashed below it."""
    src, dest, _ = _tree(tmp_path)
    (src / "ro" / "b").mkdir(parents=True)
    (src / "ro" / "b" / "kept.txt").write_text("k\n")
    (dest / "ro" / "b").mkdir(parents=True)
    (dest / "ro" / "b" / "old.txt").write_text("old\n")
    os.chmod(dest / "ro", 0o555)

    code, _, err = run("push", str(src), str(dest), "--delete")

    os.chmod(dest / "ro", 0o755)
    assert code == 0, err
    assert (dest / TRASH / "ro" / "b" / "old.txt").read_text() == "old\n"
    assert stat.S_IMODE(os.stat(dest / TRASH / "ro").st_mode) == 0o755


@pytest.mark.parametrize("trash", [True, False], ids=["to-the-trash", "for-good"])
def test_a_file_gone_since_it_was_looked_at_is_not_found(tmp_path, trash):
    """Between ``delete``'s look and its rename (or unlink), another machine's prune of the
    shared DEST took the file: the raw FileNotFoundError was a traceback; a NotFoundError is
    what ``--delete`` and ``prune`` take as the goal reached."""
    from drivestage import local_trash
    from drivestage.errors import NotFoundError

    (tmp_path / "logs").mkdir()
    gone = tmp_path / "logs" / "epoch_001.pt"
    to = local_trash.place("logs/epoch_001.pt", "logs") if trash else None
    with pytest.raises(NotFoundError, match=f"^no such file or folder: {gone}$"):
        local_trash.remove(str(gone), str(tmp_path), to, "logs")
