"""The look after a merge, each member's folder opened once (overlap42): ``not_in_place``
lstats a member by name in its folder (``dir_fd``), the folder resolved by its path as the
lstat of the whole path resolved it, and answers as that did; its descriptors are bounded and
closed however the look ends; the attack it is there for (a member of DEST changed between
the merge and the stamp) still fails the pull.
"""
from __future__ import annotations

import os
import shutil

import pytest

import _cli
import drivestage.extract.job as job
import drivestage.mtimes as mtimes
import drivestage.stamps as stamps
from _archives import a_fixed_zip, tree
from drivestage.extract import MemberRecord

MEMBERS = {f"ds/{d}/{i:02d}.txt": f"member {d}{i}\n".encode()
           for d in ("a", "b", "c") for i in range(20)}


def _reference(dest, members):
    """not_in_place as it was: the lstat of each whole path (links on the way followed)."""
    for m in members:
        st = mtimes._lstat(dest, m.path)
        if st is None or not mtimes.shows(dest, m, st):
            return m.path
    return None


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _under(fd: str, root) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith(f"{root}{os.sep}")
    except OSError:
        return False


def _records(root, paths):
    out = []
    for rel in paths:
        st = os.lstat(os.path.join(root, rel))
        kind = "symlink" if os.path.islink(os.path.join(root, rel)) else \
            "dir" if os.path.isdir(os.path.join(root, rel)) else "file"
        target = os.readlink(os.path.join(root, rel)) if kind == "symlink" else ""
        out.append(MemberRecord(rel, kind, st.st_size if kind != "dir" else 0,
                                st.st_mtime_ns if kind == "file" else 0, st.st_ino, target))
    return out


@pytest.mark.skipif(not mtimes._O_PATH, reason="folders opened with O_PATH (Linux)")
@pytest.mark.parametrize("cap", [64, 2])
def test_links_on_the_way_files_and_gaps_are_judged_as_the_whole_paths_lstat(
        tmp_path, monkeypatch, cap):
    """A folder on the way that is a link to a folder (followed, as before), to a file, dangling
    or missing; a member folder replaced by a link to a copy with a changed member: the same
    first member as the whole path's lstat names, with many folders interleaved (cap 2: the
    folders past the first two looked at path by path), and no descriptor left open."""
    monkeypatch.setattr(mtimes, "_OPEN_FOLDERS", cap)
    monkeypatch.setattr(mtimes, "_WORTH", 1)   # (every folder opened at its first member)
    root = tmp_path / "d"
    for d in "abcde":
        (root / "ds" / d).mkdir(parents=True)
        for i in range(3):
            (root / "ds" / d / f"{i}.txt").write_bytes(f"{d}{i}".encode())
    os.symlink("f0", root / "ds" / "a" / "ln")
    paths = [f"ds/{d}/{i}.txt" for i in range(3) for d in "abcde"]   # (interleaved folders)
    good = _records(str(root), ["ds", "ds/a", *paths, "ds/a/ln"])
    shutil.copytree(root / "ds" / "b", tmp_path / "copy")   # (copy2: times kept, as cp -a)
    before = _fds()
    assert mtimes.not_in_place(str(root), good) is None
    assert _fds() == before
    shutil.rmtree(root / "ds" / "b")
    os.symlink(tmp_path / "copy", root / "ds" / "b")   # the same files through a link
    assert mtimes.not_in_place(str(root), good) == _reference(str(root), good) is None
    (tmp_path / "copy" / "1.txt").write_bytes(b"changed!")
    assert mtimes.not_in_place(str(root), good) == _reference(str(root), good) == "ds/b/1.txt"
    for change, first in [(lambda: (shutil.rmtree(root / "ds" / "c"),
                                    (root / "ds" / "c").write_bytes(b"x")), "ds/c/0.txt"),
                          (lambda: (os.remove(root / "ds" / "c"),
                                    os.symlink("gone", root / "ds" / "c")), "ds/c/0.txt"),
                          (lambda: os.remove(root / "ds" / "c"), "ds/c/0.txt")]:
        change()
        assert mtimes.not_in_place(str(root), good) == _reference(str(root), good) == first
        assert _fds() == before


@pytest.mark.skipif(not mtimes._O_PATH, reason="folders opened with O_PATH (Linux)")
def test_its_folders_are_closed_when_the_look_is_interrupted(tmp_path, monkeypatch):
    """A Ctrl-C at the 7th member's lstat: every folder opened so far is closed."""
    monkeypatch.setattr(mtimes, "_WORTH", 1)
    root = tmp_path / "d"
    for d in "abc":
        (root / d).mkdir(parents=True)
        for i in range(4):
            (root / d / f"{i}").write_bytes(b"x")
    good = _records(str(root), [f"{d}/{i}" for i in range(4) for d in "abc"])
    real, calls = os.lstat, []

    def lstat(path, *, dir_fd=None, **kw):
        calls.append(path)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real(path, dir_fd=dir_fd, **kw)

    before = _fds()
    monkeypatch.setattr(mtimes.os, "lstat", lstat)
    with pytest.raises(KeyboardInterrupt):
        mtimes.not_in_place(str(root), good)
    monkeypatch.setattr(mtimes.os, "lstat", real)
    assert len(calls) == 7 and _fds() == before


def test_a_member_changed_after_the_merge_still_fails_the_pull(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """The attack the look is for: right after the merge, a member folder of DEST is swapped
    for a link to a copy of it with one member changed (a hostile DEST, another program).
    The pull fails naming that member, and the stamp does not say extracted (the rerun
    extracts again). Fails when the look is skipped (checked by hand: exit 0)."""
    emulator.add_file("F/a.zip", a_fixed_zip(MEMBERS))
    dest = tmp_path / "data"
    merge = job.merge

    def merge_then_swap(*args, **kw):
        out = merge(*args, **kw)
        copy = tmp_path / "elsewhere"
        shutil.copytree(dest / "ds" / "b", copy)   # (copy2: times kept)
        (copy / "07.txt").write_bytes(b"not the member\n")
        shutil.rmtree(dest / "ds" / "b")
        os.symlink(copy, dest / "ds" / "b")
        return out

    monkeypatch.setattr(job, "merge", merge_then_swap)
    code, _out, err = _cli.run("pull", "drive:F/a.zip", str(dest), "-x", "-q")
    assert code == 1
    assert err.strip() == (f"Error: {dest / 'ds' / 'b' / '07.txt'} changed while drive:F/a.zip "
                           "was extracted (another program or pull wrote there); run the pull "
                           "again")
    (stamp,) = stamps.every(str(dest))
    assert stamp["extracted"] is False
    monkeypatch.setattr(job, "merge", merge)
    os.remove(dest / "ds" / "b")
    _cli.ok("pull", "drive:F/a.zip", str(dest), "-x", "-q")
    assert {k: v for k, v in tree(dest).items() if not k.endswith(".zip")} == MEMBERS


@pytest.mark.skipif(not mtimes._O_PATH, reason="folders opened with O_PATH (Linux)")
def test_a_ctrl_c_that_cuts_the_closes_short_leaves_nothing_open(tmp_path, monkeypatch):
    """A Ctrl-C as the second folder is closed: the look's object, gone, closes the rest
    (its finalizer), and closes none twice."""
    import gc

    monkeypatch.setattr(mtimes, "_WORTH", 1)
    root = tmp_path / "d"
    for d in "abc":
        (root / d).mkdir(parents=True)
        (root / d / "f").write_bytes(b"x")
    good = _records(str(root), [f"{d}/f" for d in "abc"])
    real, closed = os.close, []

    def close(fd):
        try:
            ours = os.readlink(f"/proc/self/fd/{fd}").startswith(f"{root}{os.sep}")
        except OSError:
            ours = False
        if ours:   # (only the look's folders: a collection may close other files meanwhile)
            closed.append(fd)
            if len(closed) == 2:
                raise KeyboardInterrupt   # (before that close: the folder stays open)
        real(fd)

    gc.collect()
    before = _fds()
    monkeypatch.setattr(mtimes.os, "close", close)
    with pytest.raises(KeyboardInterrupt):
        mtimes.not_in_place(str(root), good)
    gc.collect()
    monkeypatch.setattr(mtimes.os, "close", real)
    assert _fds() <= before and not [fd for fd in _fds() if _under(fd, root)]
    assert len(closed) == 4 and len(set(closed)) == 3   # (the second one again, once)


@pytest.mark.skipif(not mtimes._O_PATH, reason="folders opened with O_PATH (Linux)")
def test_a_folder_is_opened_only_for_many_members_and_never_needed(tmp_path, monkeypatch):
    """A folder of fewer than _WORTH members is looked at path by path (one file a folder
    cost 7 times the CPU, each opened); one of more is opened once; a folder that cannot be
    opened (no descriptor left: EMFILE) is looked at path by path, its members in place,
    never called missing."""
    import errno

    root = tmp_path / "d"
    (root / "few").mkdir(parents=True)
    (root / "many").mkdir()
    for i in range(3):
        (root / "few" / f"{i}").write_bytes(b"x")
    for i in range(mtimes._WORTH + 5):
        (root / "many" / f"{i}").write_bytes(b"y")
    good = _records(str(root), [f"few/{i}" for i in range(3)] +
                    [f"many/{i}" for i in range(mtimes._WORTH + 5)])
    real, opened = os.open, []

    def spy(path, flags, *args, **kw):
        if flags & os.O_DIRECTORY:
            opened.append(os.path.relpath(path, root))
        return real(path, flags, *args, **kw)

    monkeypatch.setattr(mtimes.os, "open", spy)
    assert mtimes.not_in_place(str(root), good) is None
    assert opened == ["many"]

    def full(path, flags, *args, **kw):
        if flags & os.O_DIRECTORY:
            raise OSError(errno.EMFILE, "Too many open files")
        return real(path, flags, *args, **kw)

    monkeypatch.setattr(mtimes.os, "open", full)
    before = _fds()
    assert mtimes.not_in_place(str(root), good) is None
    bad = _records(str(root), [f"many/{i}" for i in range(mtimes._WORTH + 5)])
    (root / "many" / "36").write_bytes(b"changed")
    assert mtimes.not_in_place(str(root), bad) == _reference(str(root), bad) == "many/36"
    assert _fds() == before
