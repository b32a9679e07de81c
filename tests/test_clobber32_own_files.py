"""A first ``pull -x`` over files of the user's at member paths (clobber32, from a finding of
attackpull32).

DEST ``data/ds/a.txt`` held "my precious labels", written by no extraction (no stamp records
it); ``pull drive:F/a.zip data -x`` with a member ``ds/a.txt`` replaced it, exit 0, without a
word: the labels were gone. (``unzip`` itself asks first; at the archive's own name a pull
refuses "is already there and is not a copy".) Now such a file is kept: adopted when it
already holds the member's very bytes (the old recipe's hand-made ``unzip``, pulled now: no
error, nothing rewritten), else the pull ends with one line and exit 1, nothing extracted;
``--force`` replaces it as before. What an earlier extraction wrote (this archive's, or
another's: an overlay) is replaced as before.
"""
from __future__ import annotations

import json
import os

import pytest

import _cli
from _archives import a_fixed_zip, a_tgz, tree

MEMBERS = {"ds/a.txt": b"the archive's labels\n", "ds/b.txt": b"b\n", "ds/c.txt": b"c\n"}
MINE = b"my precious labels"


def _put(dest, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)


def _archive(emulator, name: str, members: dict[str, bytes] = MEMBERS) -> None:
    emulator.add_file(f"F/{name}", a_fixed_zip(members) if name.endswith(".zip")
                      else a_tgz(members))


def _members(dest, name: str) -> dict[str, bytes]:
    """DEST's files but the archive (and a partial download of it: a zip refused from its
    member list, read first, stays partly downloaded for the rerun)."""
    return {k: v for k, v in tree(dest).items() if k != name and not k.startswith(f".{name}.")}


def _refusal(dest, first: str, count: int, name: str) -> str:
    where = dest / first
    if count == 1:
        return (f"Error: {name} would replace 1 file in {dest} that is not from an "
                f"extraction and holds other bytes: {where}; nothing of it was extracted: move it "
                "away, or pull with --force to replace it")
    return (f"Error: {name} would replace {count} files in {dest} that are not from an "
            f"extraction and hold other bytes, the first {where}; nothing of it was extracted: "
            "move them away, or pull with --force to replace them")


SAME_SIZE = b"x" * len(MEMBERS["ds/c.txt"])


@pytest.mark.parametrize("name", ["a.zip", "a.tgz"])
@pytest.mark.parametrize("mine", [{"ds/a.txt": MINE, "ds/c.txt": SAME_SIZE},
                                  {"ds/c.txt": SAME_SIZE}], ids=["sizes", "bytes"])
def test_a_user_file_at_a_member_path_is_kept_and_the_pull_refused_until_moved_away(
        emulator, local_state, drive_env, fast_retries, tmp_path, name, mine):
    """Another size (refused from the member list: the zip's, read first while it
    downloads; the tar's as it arrived) and the same size with other bytes (refused once
    written, before the merge): kept, one line, exit 1, no member of the archive in DEST;
    the rerun after moving them away extracts it."""
    _archive(emulator, name)
    dest = tmp_path / "data"
    _put(dest, mine)

    code, out, err = _cli.run("pull", f"drive:F/{name}", str(dest), "-x")

    assert code == 1, err
    assert err.strip().splitlines()[-1] == _refusal(dest, min(mine), len(mine), name)
    assert _members(dest, name) == mine

    os.rename(dest / "ds", tmp_path / "mine")
    code, out, err = _cli.run("pull", f"drive:F/{name}", str(dest), "-x", "--json")
    assert code == 0, err
    assert _members(dest, name) == MEMBERS
    assert tree(tmp_path / "mine") == {k[3:]: v for k, v in mine.items()}


@pytest.mark.parametrize("name", ["a.zip", "a.tgz"])
def test_an_archive_staged_before_or_a_local_one_is_refused_alike(
        emulator, local_state, drive_env, fast_retries, tmp_path, name):
    """The archive extracted once it is all there (staged by a pull without -x; a local
    archive, hashed as it is extracted): the same refusal, and --force replaces."""
    _archive(emulator, name)
    dest = tmp_path / "data"
    _cli.ok("pull", f"drive:F/{name}", str(dest))
    (tmp_path / name).write_bytes((dest / name).read_bytes())
    _put(dest, {"ds/a.txt": MINE, "ds/c.txt": SAME_SIZE})
    for src in (f"drive:F/{name}", str(tmp_path / name)):
        code, out, err = _cli.run("pull", src, str(dest), "-x")
        assert code == 1, err
        # The file of the member's size is counted too: by the zip member's CRC-32, or
        # compared with the tar's member once written.
        assert err.strip().splitlines()[-1] == _refusal(dest, "ds/a.txt", 2, name)
        assert _members(dest, name) == {"ds/a.txt": MINE, "ds/c.txt": SAME_SIZE}
    _cli.ok("pull", str(tmp_path / name), str(dest), "-x", "--force")
    assert _members(dest, name) == MEMBERS


def test_the_zip_followed_while_it_downloads_is_refused_before_its_download(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """The zip's member list is read first (its central directory, while it downloads): a
    file of another size at a member path stops the pull before the archive's bytes are
    fetched. ``--force`` replaces the file, as a pull did before."""
    _archive(emulator, "a.zip")
    dest = tmp_path / "data"
    _put(dest, {"ds/a.txt": MINE})

    code, out, err = _cli.run("pull", "drive:F/a.zip", str(dest), "-x")
    assert code == 1, err
    assert err.strip().splitlines()[-1] == _refusal(dest, "ds/a.txt", 1, "a.zip")
    assert _members(dest, "a.zip") == {"ds/a.txt": MINE}
    assert not (dest / "a.zip").exists()   # refused before it was all there

    code, out, err = _cli.run("pull", "drive:F/a.zip", str(dest), "-x", "--force")
    assert code == 0, err
    assert _members(dest, "a.zip") == MEMBERS


@pytest.mark.parametrize("name", ["a.zip", "a.tgz"])
def test_files_that_already_hold_the_members_bytes_are_adopted_not_rewritten(
        emulator, local_state, drive_env, fast_retries, tmp_path, name):
    """The old recipe's ``unzip`` by hand, then ``pull -x``: the files are the members, kept
    as they are (same inode and mtime), the others extracted; the next pull is cached."""
    _archive(emulator, name)
    dest = tmp_path / "data"
    _put(dest, {"ds/a.txt": MEMBERS["ds/a.txt"], "ds/b.txt": MEMBERS["ds/b.txt"]})
    os.utime(dest / "ds/a.txt", ns=(1_000_000_000, 1_000_000_000))
    before = {rel: os.lstat(dest / rel) for rel in ("ds/a.txt", "ds/b.txt")}

    code, out, err = _cli.run("pull", f"drive:F/{name}", str(dest), "-x", "--json")

    assert code == 0, err
    assert json.loads(out)["members_kept"] == 2, out
    assert _members(dest, name) == MEMBERS
    for rel, st in before.items():
        now = os.lstat(dest / rel)
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), rel
    code, out, err = _cli.run("pull", f"drive:F/{name}", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "cached"


def test_what_another_archive_extracted_is_replaced_as_before(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """An overlay: fixes.zip's ``ds/a.txt`` over the one set.zip extracted (its stamp records
    it) replaces it, into DEST or into a folder below it."""
    _archive(emulator, "set.zip")
    _archive(emulator, "fixes.zip", {"ds/a.txt": b"fixed"})
    _archive(emulator, "deep.zip", {"a.txt": b"fixed again"})
    dest = tmp_path / "data"
    _cli.ok("pull", "drive:F/set.zip", str(dest), "-x")
    _cli.ok("pull", "drive:F/fixes.zip", str(dest), "-x")
    assert (dest / "ds/a.txt").read_bytes() == b"fixed"
    _cli.ok("pull", "drive:F/deep.zip", str(dest / "ds"), "-x")
    assert (dest / "ds/a.txt").read_bytes() == b"fixed again"


def test_a_member_through_a_link_of_dest_to_the_users_folder_is_refused(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """DEST's ``lnk`` is the user's link to their folder ``real`` (``real/a.txt``, theirs);
    the archive's ``lnk/a.txt`` neither writes through the link nor replaces it: refused,
    the link and the file as they were."""
    _archive(emulator, "h.zip", {"lnk/a.txt": b"hostile"})
    dest = tmp_path / "data"
    _put(dest, {"real/a.txt": MINE})
    os.symlink("real", dest / "lnk")

    code, out, err = _cli.run("pull", "drive:F/h.zip", str(dest), "-x")

    assert code == 1, err
    assert err.strip().splitlines()[-1] == _refusal(dest, "lnk", 1, "h.zip")
    assert os.readlink(dest / "lnk") == "real"
    assert (dest / "real/a.txt").read_bytes() == MINE


def test_a_merge_cut_off_before_its_stamp_leaves_what_it_wrote_replaceable(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """A pull killed between the merge and its stamp's write, then a new version on Drive:
    the members the merge moved in are drivestage's (its journal says so), not the user's:
    the rerun replaces them, no refusal."""
    import drivestage.extract.job as job
    from test_stage22 import _replace_on_drive

    merge = job.merge

    def merge_then_killed(*args, **kwargs):
        merge(*args, **kwargs)
        raise KeyboardInterrupt   # (the kill: nothing after the merge runs)

    _archive(emulator, "a.zip")
    dest = tmp_path / "data"
    with monkeypatch.context() as patched:
        patched.setattr(job, "merge", merge_then_killed)
        code, out, err = _cli.run("pull", "drive:F/a.zip", str(dest), "-x")
    assert code == 130, err
    assert _members(dest, "a.zip") == MEMBERS
    v2 = {rel: data.upper() for rel, data in MEMBERS.items()}
    _replace_on_drive("F/a.zip", a_fixed_zip(v2), tmp_path)

    code, out, err = _cli.run("pull", "drive:F/a.zip", str(dest), "-x")

    assert code == 0, err
    assert _members(dest, "a.zip") == v2
    assert sorted(n for n in os.listdir(dest / ".drivestage") if n.endswith(".merging")) == []


def test_a_link_with_the_members_target_is_adopted_another_is_refused(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """Links too: one of the user's with the member's target is the member (kept, same
    inode); one with another target is theirs (refused, then replaced with --force)."""
    emulator.add_file("F/l.zip", a_fixed_zip(MEMBERS, links={"ds/l": "a.txt", "ds/m": "b.txt"}))
    dest = tmp_path / "data"
    (dest / "ds").mkdir(parents=True)
    os.symlink("a.txt", dest / "ds/l")
    os.symlink("c.txt", dest / "ds/m")
    code, out, err = _cli.run("pull", "drive:F/l.zip", str(dest), "-x")
    assert code == 1, err
    assert err.strip().splitlines()[-1] == _refusal(dest, "ds/m", 1, "l.zip")
    assert os.readlink(dest / "ds/m") == "c.txt"
    os.unlink(dest / "ds/m")
    ino = os.lstat(dest / "ds/l").st_ino
    _cli.ok("pull", "drive:F/l.zip", str(dest), "-x")
    assert os.lstat(dest / "ds/l").st_ino == ino and os.readlink(dest / "ds/m") == "b.txt"
