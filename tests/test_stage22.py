"""stage22: what the walk of session 21 left alone in `pull`.

1. putting back one deleted member of an extracted archive writes that member, not the
   whole archive again;
2. a folder pull leaves no lock file per staged file;
3. an update that keeps a member the user edited says so;
4. numeric options of `pull` that mean nothing are usage errors;
5. a local archive given as SRC is extracted from where it is, not copied first.
"""
from __future__ import annotations

import io
import os
import tarfile
import zipfile

import pytest

from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)
from test_messages_walk20 import _drivestage, _media_gets

N = 40


def _members() -> dict[str, bytes]:
    return {f"ds/{'ab'[i % 2]}/m{i:02d}.bin": bytes([i]) * (1000 + i) for i in range(N)}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in members.items():
            zf.writestr(path, data)
    return buf.getvalue()


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _inodes(root) -> dict[str, tuple[int, int]]:
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".drivestage"]
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            out[os.path.relpath(os.path.join(folder, name), root)] = (st.st_ino, st.st_mtime_ns)
    return out


# ------------------------------------------------ 1. one member put back, not the archive

@pytest.mark.parametrize("name,make", [("data.zip", _zip), ("data.tar.gz", _targz)])
def test_putting_back_deleted_members_writes_only_those(name, make, emulator, drive_env,
                                                        local_state, tmp_path):
    """The walk deleted one image of an extracted dataset and ran the pull again: the whole
    archive was extracted again into a temporary folder and merged, every member replaced
    (a new inode each: 40 files written for one). Now only what is not in place is
    written; what the user did not touch keeps its inode and mtime."""
    members = _members()
    emulator.add_file(f"VOC_datasets/{name}", make(members))
    dest = tmp_path / "data"
    src = f"drive:VOC_datasets/{name}"
    assert _drivestage("pull", src, str(dest), "--extract").exit_code == 0
    before = _inodes(dest)
    (dest / "ds/a/m04.bin").unlink()                       # one file
    (dest / "ds/b/m07.bin").write_bytes(b"shorter")         # one changed (another size)
    media = len(_media_gets(emulator))
    r = _drivestage("pull", src, str(dest), "--extract")
    assert r.exit_code == 0, r.output
    after = _inodes(dest)
    assert sorted(after) == sorted(before)
    # What the user did not touch keeps its inode and mtime. The two put back are checked
    # by bytes below: a freed inode may be reused with the member's own mtime.
    touched = {"ds/a/m04.bin", "ds/b/m07.bin"}
    assert {p: after[p] for p in after if p not in touched} == \
        {p: before[p] for p in before if p not in touched}
    for path, data in members.items():
        assert (dest / path).read_bytes() == data
    assert len(_media_gets(emulator)) == media               # the archive was not fetched
    # The stamp's records hold: the next run is a cache hit, and an update still removes
    # what this archive wrote, the restored members included.
    r = _drivestage("pull", src, str(dest), "--extract")
    assert r.exit_code == 0 and _inodes(dest) == after
    assert "already staged" in r.stderr, r.stderr


def test_a_deleted_folder_of_members_comes_back_with_the_rest_untouched(
        emulator, drive_env, local_state, tmp_path):
    import shutil

    members = _members()
    emulator.add_file("VOC_datasets/data.zip", _zip(members))
    dest = tmp_path / "data"
    assert _drivestage("pull", "drive:VOC_datasets/data.zip", str(dest), "-x").exit_code == 0
    before = _inodes(dest)
    shutil.rmtree(dest / "ds/b")
    r = _drivestage("pull", "drive:VOC_datasets/data.zip", str(dest), "-x")
    assert r.exit_code == 0, r.output
    after = _inodes(dest)
    assert all(after[p] == before[p] for p in before if p.startswith("ds/a/"))
    assert sorted(after) == sorted(before)
    for path, data in members.items():
        assert (dest / path).read_bytes() == data


# ------------------------------------------------ 2. no lock file left per staged file

def _state_files(root) -> list[str]:
    out = []
    for folder, dirs, files in os.walk(root):
        if os.path.basename(folder) == ".drivestage":
            out += [os.path.relpath(os.path.join(folder, f), root) for f in files]
    return sorted(out)


def test_a_folder_pull_leaves_no_lock_file_per_file(emulator, drive_env, local_state,
                                                     tmp_path):
    """The walk's 607-file folder left 607 empty `.drivestage/<name>.lock` files beside
    the stamps: a third of a small tmpfs's inodes. The stamps stay; the locks go."""
    for i in range(12):
        emulator.add_file(f"Datasets/small/img/{i:03d}.xml", bytes([i]) * 100)
    dest = tmp_path / "data"
    for _ in range(2):                                         # a pull, then a rerun
        r = _drivestage("pull", "drive:Datasets/small", str(dest))
        assert r.exit_code == 0, r.output
        left = _state_files(dest)
        assert [f for f in left if f.endswith(".lock")] == [], left
        assert len([f for f in left if f.endswith(".json")]) == 12, left


def test_a_single_file_pull_leaves_no_lock_file(emulator, drive_env, local_state, tmp_path):
    emulator.add_file("VOC_datasets/data.zip", _zip(_members()))
    dest = tmp_path / "data"
    assert _drivestage("pull", "drive:VOC_datasets/data.zip", str(dest), "-x").exit_code == 0
    left = _state_files(dest)
    assert [f for f in left if f.endswith(".lock") and "merge" not in f] == [], left


def test_two_processes_pull_one_folder_into_one_dest_and_leave_no_lock(
        emulator, drive_env, local_state, tmp_path):
    """Two pulls of one folder into one DEST at once (two notebook cells, DDP ranks): each
    file staged once and whole, both exit 0, and no lock file is left behind."""
    from _cli import child_env

    files = {f"img/{i:03d}.xml": os.urandom(3000) for i in range(16)}
    for rel, data in files.items():
        emulator.add_file(f"Datasets/small/{rel}", data)
    dest = tmp_path / "data"
    env = dict(child_env(emulator), DRIVESTAGE_STATE_DIR=str(tmp_path / "state"))
    procs = [cli_server().popen(["pull", "drive:Datasets/small", str(dest), "-q"], env=env,
                                stdout=PIPE, stderr=PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for rel, data in files.items():
        assert (dest / "small" / rel).read_bytes() == data
    left = _state_files(dest)
    assert [f for f in left if f.endswith(".lock")] == [], left
    assert len(_media_gets(emulator)) == len(files)           # each file fetched once


_CONTENDER = r"""
import os, sys
from drivestage.extract.statedir import state_lock
folder, rounds = sys.argv[1], int(sys.argv[2])
bad = 0
for _ in range(rounds):
    with state_lock(folder, "x.lock", lambda: None, transient=True) as held:
        assert held
        try:
            fd = os.open(os.path.join(folder, "inside"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            bad += 1        # another process holds the lock at the same time
            continue
        os.close(fd)
        os.unlink(os.path.join(folder, "inside"))
print(bad)
"""


def test_a_removed_lock_file_never_lets_two_processes_in_at_once(tmp_path):
    """Removing the lock file after use has the classic race: B opens the file A holds,
    waits, A unlinks it and lets go, B gets a lock on the unlinked file while C makes a new
    one and locks that. The holder checks it holds the file the name has; three processes
    taking the lock 300 times each never overlap, and no lock file is left."""
    procs = [cli_server().popen([str(tmp_path), "300"], script=_CONTENDER, stdout=PIPE,
                                text=True) for _ in range(3)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert outs == ["0", "0", "0"]
    assert sorted(os.listdir(tmp_path / ".drivestage")) == []


# ------------------------------------------------ 3. an update keeps edited members: say so

def _replace_on_drive(path: str, data: bytes, tmp_path) -> None:
    """A new version of ``path`` on Drive under the same id (as Drive's "manage versions")."""
    import drivestage

    store = drivestage.connect()
    old = store.resolve(path)
    local = tmp_path / "upload.bin"
    local.write_bytes(data)
    parent = store.resolve(path.rsplit("/", 1)[0])
    assert store.upload(str(local), parent, old.name, replace=old).id == old.id


V1 = {"ds/keep.txt": b"kept", "ds/gone.txt": b"only in v1",
      **{f"ds/e{i}.txt": b"v1 %d" % i for i in range(5)}}
V2 = {"ds/keep.txt": b"kept, v2", "ds/new.txt": b"new in v2"}


@pytest.mark.parametrize("edited", [1, 5])
def test_an_update_that_keeps_edited_members_says_which_and_why(
        edited, emulator, drive_env, local_state, tmp_path):
    """walk21 pushed a new version of the dataset that lacks a member the user had edited:
    the edited copy stayed, as the README promises, but nothing said so - the user's
    dataset now held a file the new version does not have. One line names it (the first
    three, and how many more) and why it stayed."""
    emulator.add_file("VOC_datasets/v.zip", _zip(V1))
    dest = tmp_path / "data"
    assert _drivestage("pull", "drive:VOC_datasets/v.zip", str(dest), "-x").exit_code == 0
    for i in range(edited):
        (dest / f"ds/e{i}.txt").write_bytes(b"my labels %d" % i)
    _replace_on_drive("VOC_datasets/v.zip", _zip(V2), tmp_path)
    r = _drivestage("pull", "drive:VOC_datasets/v.zip", str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    names = ", ".join(f"ds/e{i}.txt" for i in range(min(edited, 3)))
    more = f" and {edited - 3} more" if edited > 3 else ""
    files = "1 file" if edited == 1 else f"{edited} files"
    it = "it" if edited == 1 else "them"
    lines = [ln for ln in r.stderr.splitlines() if "kept" in ln]
    assert lines == [
        f"WARNING drivestage.stage_extraction: kept {files} of the previous version of "
        f"drive:VOC_datasets/v.zip that the new version lacks, because "
        f"{'it was' if edited == 1 else 'they were'} changed since drivestage extracted "
        f"{it} (your edits are not removed): {names}{more}; remove {it} from {dest} by hand "
        "if not wanted"], r.stderr
    assert sorted(p.name for p in (dest / "ds").iterdir()) == sorted(
        ["keep.txt", "new.txt"] + [f"e{i}.txt" for i in range(edited)])
    # Nothing said when nothing was kept. (The edited files are the user's now, which a
    # version that has them again replaces only with --force: clobber32.)
    _replace_on_drive("VOC_datasets/v.zip", _zip(V1), tmp_path)
    r = _drivestage("pull", "drive:VOC_datasets/v.zip", str(dest), "-x")
    assert r.exit_code == 1 and "pull with --force to replace" in r.stderr, r.stderr
    r = _drivestage("pull", "drive:VOC_datasets/v.zip", str(dest), "-x", "--force")
    assert r.exit_code == 0 and "kept" not in r.stderr, r.stderr


# ------------------------------------------------ 4. numeric options that mean nothing

@pytest.mark.parametrize("value", ["0", "0.4", "100", "63KiB"])
def test_pull_chunk_size_below_a_useful_piece_is_a_usage_error(value, tmp_path):
    """`pull --chunk-size 0` was accepted and meant the default (one request per stream),
    without a word; 0.4 became 0 the same way, and a few bytes made a request per few
    bytes (a 2 GB zip in millions of requests)."""
    r = _drivestage("pull", str(tmp_path / "missing.zip"), str(tmp_path / "d"),
                    "--chunk-size", value)
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: Invalid value for '--chunk-size': {value} is less than 64KiB, the smallest "
        "piece worth a request of its own; give 64KiB or more, or leave it out for one "
        "request per stream")


@pytest.mark.parametrize("args,word", [(["--jobs", "0"], "--jobs"), (["-j", "-2"], "--jobs"),
                                       (["--retries", "0"], "--retries"),
                                       (["--reserve", "-1GB"], "--reserve")])
def test_pull_other_numeric_options_refuse_nonsense(args, word, tmp_path):
    r = _drivestage("pull", str(tmp_path / "missing.zip"), str(tmp_path / "d"), *args)
    assert r.exit_code == 2, r.output
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: Invalid value for ") and word in line, line


# ------------------------------------------------ 5. a local archive extracted where it lies

@pytest.mark.parametrize("name,make", [("voc.zip", _zip), ("voc.tar.gz", _targz)])
def test_a_local_archive_is_extracted_from_where_it_lies(name, make, local_state, tmp_path):
    """`drivestage pull /kaggle/input/x/voc.zip ./data -x` copied the zip whole into DEST
    (Kaggle's 20 GB working disk), then extracted it: the archive's size spent for nothing.
    It is now extracted from the original, which is read, never written; the stamp records
    the original, so that a rerun is a no-op, a member deleted by hand comes back from it,
    and a new version of it is noticed (an update)."""
    inputs = tmp_path / "input"
    inputs.mkdir()
    archive = inputs / name
    members = _members()
    archive.write_bytes(make(members))
    dest = tmp_path / "data"
    r = _drivestage("pull", str(archive), str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(dest)) == [".drivestage", "ds"]         # no copy of the archive
    for path, data in members.items():
        assert (dest / path).read_bytes() == data
    before = _inodes(dest)
    r = _drivestage("pull", str(archive), str(dest), "-x")
    assert r.exit_code == 0, r.output
    assert "already staged" in r.stderr and _inodes(dest) == before, r.stderr
    # One member deleted by hand: it alone comes back, from the original.
    (dest / "ds/a/m04.bin").unlink()
    r = _drivestage("pull", str(archive), str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    # The others are untouched; the restored member is compared by bytes, not by inode
    # and mtime: the filesystem may reuse the freed inode and the extraction sets the
    # member's own mtime, so (ino, mtime) can match (CI, 1 run in ~20).
    after = _inodes(dest)
    assert sorted(after) == sorted(before)
    assert {p: after[p] for p in after if p != "ds/a/m04.bin"} == \
        {p: before[p] for p in before if p != "ds/a/m04.bin"}
    assert (dest / "ds/a/m04.bin").read_bytes() == members["ds/a/m04.bin"]
    # A new version of the original: an update (what it lacks goes, what it adds comes).
    v2 = {"ds/a/m00.bin": b"v2", "ds/new.bin": b"new"}
    archive.write_bytes(make(v2))
    r = _drivestage("pull", str(archive), str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    got = {os.path.relpath(os.path.join(f, n), dest) for f, d, ns in os.walk(dest)
           if ".drivestage" not in f for n in ns}
    assert got == set(v2)
    assert sorted(os.listdir(dest)) == [".drivestage", "ds"]


def test_a_local_archive_changed_without_a_new_mtime_is_not_trusted(local_state, tmp_path):
    """The stamp vouches for the original by its inode, size, mtime and ctime: bytes
    changed with the old mtime put back are noticed, hashed and extracted again."""
    inputs = tmp_path / "input"
    inputs.mkdir()
    archive = inputs / "voc.zip"
    archive.write_bytes(_zip({"ds/a.bin": b"A" * 100}))
    dest = tmp_path / "data"
    assert _drivestage("pull", str(archive), str(dest), "-x", "-q").exit_code == 0
    st = archive.stat()
    with open(archive, "r+b") as fh:                                 # same size, other bytes
        fh.write(_zip({"ds/a.bin": b"B" * 100}))
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = _drivestage("pull", str(archive), str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    assert (dest / "ds/a.bin").read_bytes() == b"B" * 100
