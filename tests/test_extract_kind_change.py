"""`pull --extract` of a new version in which a member changed kind: v1 has ``ds/a/x`` (so
``ds/a`` is a folder the v1 extraction made) and v2 a file ``ds/a``, or the reverse. The
update goes through when what is in the way is exactly what drivestage's earlier extraction
of that archive wrote (its stamp's records: every file inside unchanged, nothing else
inside); anything of the user's in the way (or of another archive's) keeps today's refusal
and loses nothing. A pull killed at any step of that merge leaves a DEST a rerun completes,
with nothing of the user's lost."""
from __future__ import annotations

import errno
import json
import os
import subprocess

import pytest

import drivestage
from _cli import child_env, run
from _archives import a_fixed_zip as a_zip
from _kill import sigkill_when
from _forkcli import cli_server
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "data"


def tree(root) -> dict:
    """Every file, link and empty folder under ``root`` but drivestage's state folder:
    bytes, ('->', target) or ('dir',)."""
    out: dict = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".drivestage"]
        rel_folder = os.path.relpath(folder, root)
        if not dirs and not files and rel_folder != ".":
            out[rel_folder] = ("dir",)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            out[rel] = ("->", os.readlink(path)) if os.path.islink(path) else \
                open(path, "rb").read()
    return out


def leftovers(root) -> list:
    """drivestage's temporary folders and set-aside entries anywhere under ``root``."""
    return sorted(os.path.relpath(os.path.join(folder, n), root)
                  for folder, dirs, files in os.walk(root)
                  for n in dirs + files if n.startswith(".drivestage-"))


def replace_on_drive(path: str, data: bytes, tmp_path) -> None:
    """A new version of ``path`` on Drive under the same id (as Drive's "manage versions")."""
    store = drivestage.connect()
    old = store.resolve(path)
    local = tmp_path / "upload.bin"
    local.write_bytes(data)
    parent = store.resolve(path.rsplit("/", 1)[0])
    assert store.upload(str(local), parent, old.name, replace=old).id == old.id


# v1 makes the folder ds/a (a subfolder and a link inside); v2 has a file ds/a.
FOLDER_V1 = {"ds/a/x": b"x of v1", "ds/a/sub/y": b"y of v1", "ds/keep.txt": b"kept"}
FOLDER_V1_LINKS = {"ds/a/lnk": "x"}
FILE_V2 = {"ds/a": b"ds/a is a file in v2", "ds/keep.txt": b"kept, v2"}
# The reverse: v1 has the file ds/a, v2 the folder ds/a/ with members.
FILE_V1 = {"ds/a": b"ds/a is a file in v1", "ds/keep.txt": b"kept"}
FOLDER_V2 = {"ds/a/x": b"x of v2", "ds/a/sub/y": b"y of v2", "ds/keep.txt": b"kept, v2"}

DIRECTIONS = {
    "folder to file": (a_zip(FOLDER_V1, FOLDER_V1_LINKS),
                       {**FOLDER_V1, **{k: ("->", v) for k, v in FOLDER_V1_LINKS.items()}},
                       a_zip(FILE_V2), FILE_V2),
    "file to folder": (a_zip(FILE_V1), FILE_V1, a_zip(FOLDER_V2), FOLDER_V2),
}


def _staged_v1(emulator, dest, direction) -> tuple[bytes, dict]:
    blob1, tree1, blob2, tree2 = DIRECTIONS[direction]
    emulator.add_file("d/v.zip", blob1)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert tree(dest) == {"v.zip": blob1, **tree1}
    return blob2, tree2


def _folder_message(dest) -> str:
    return (f"v.zip: member ds/a is a file, but {dest / 'ds/a'} is a folder; move that folder "
            "away or extract elsewhere")


# ------------------------------------------------------------------------- the update

@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_an_update_that_changes_a_members_kind_replaces_what_v1_made(emulator, drive_env,
                                                                     dest, tmp_path,
                                                                     direction):
    blob2, tree2 = _staged_v1(emulator, dest, direction)
    (dest / "mine.txt").write_bytes(b"the user's")
    replace_on_drive("d/v.zip", blob2, tmp_path)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "update"
    assert tree(dest) == {"v.zip": blob2, **tree2, "mine.txt": b"the user's"}
    assert leftovers(dest) == []
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert (code, json.loads(out)["action"]) == (0, "cached")


def test_a_tar_followed_as_it_downloads_updates_too(emulator, drive_env, dest, tmp_path):
    """A tar is extracted as it arrives; the member that changed kind is merged by the
    extraction of the verified archive."""
    from _archives import a_tgz

    emulator.add_file("d/v.tar.gz", a_tgz(FOLDER_V1))
    assert run("pull", "drive:d/v.tar.gz", str(dest), "-x", "-q")[0] == 0
    replace_on_drive("d/v.tar.gz", a_tgz(FILE_V2), tmp_path)
    code, out, err = run("pull", "drive:d/v.tar.gz", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "update"
    assert tree(dest) == {"v.tar.gz": a_tgz(FILE_V2), **FILE_V2}
    assert leftovers(dest) == []


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_the_extraction_that_follows_the_download_makes_the_update(emulator, drive_env, dest,
                                                                  tmp_path, kind):
    """The records of v1 reach the extraction that follows the download: the update is not
    left to a second extraction of the verified archive."""
    from _archives import a_tgz

    make = a_zip if kind == "zip" else a_tgz
    emulator.add_file(f"d/v.{kind}", make(FOLDER_V1))
    assert run("pull", f"drive:d/v.{kind}", str(dest), "-x", "-q")[0] == 0
    replace_on_drive(f"d/v.{kind}", make(FILE_V2), tmp_path)
    code, out, err = run("-vv", "pull", f"drive:d/v.{kind}", str(dest), "-x")
    assert code == 0, err
    assert "extracting the verified archive again" not in err
    assert "extracting after the download" not in err
    assert tree(dest) == {f"v.{kind}": make(FILE_V2), **FILE_V2}
    assert leftovers(dest) == []


def test_a_folder_pull_updates_an_archive_whose_member_changed_kind(emulator, drive_env,
                                                                    tmp_path):
    """The same through a folder pull (archives in nested folders, the root's merge lock)."""
    dest = tmp_path / "data"
    emulator.add_file("d/sets/v.zip", a_zip(FOLDER_V1))
    assert run("pull", "drive:d", str(dest), "-x", "-q")[0] == 0
    assert (dest / "d/sets/ds/a/x").read_bytes() == b"x of v1"
    replace_on_drive("d/sets/v.zip", a_zip(FILE_V2), tmp_path)
    code, out, err = run("pull", "drive:d", str(dest), "-x", "-q")
    assert code == 0, err
    assert tree(dest / "d/sets") == {"v.zip": a_zip(FILE_V2), **FILE_V2}


# ------------------------------------------------------------------------- the user's

USERS = {
    "a file added in the folder": lambda a: (a / "mine.txt").write_bytes(b"the user's"),
    "a file added in a subfolder": lambda a: (a / "sub/mine.txt").write_bytes(b"the user's"),
    "a member edited": lambda a: (a / "x").write_bytes(b"edited by the user"),
    "a member replaced with the same bytes": lambda a: (
        (a / "x").unlink(), (a / "x").write_bytes(b"x of v1")),
    "an empty folder added": lambda a: (a / "empty").mkdir(),
    "a link added": lambda a: os.symlink("x", a / "mylink"),
}


@pytest.mark.parametrize("what", list(USERS))
def test_anything_of_the_users_in_the_folder_keeps_the_refusal_and_is_kept(
        emulator, drive_env, dest, tmp_path, what):
    blob2, _ = _staged_v1(emulator, dest, "folder to file")
    USERS[what](dest / "ds/a")
    before = tree(dest)
    replace_on_drive("d/v.zip", blob2, tmp_path)
    for _ in range(2):  # and again: nothing changes from one run to the next
        code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
        assert code == 1
        assert err.strip() == f"Error: {_folder_message(dest)}"
        assert tree(dest) == {**before, "v.zip": blob2}
        assert leftovers(dest) == []


def test_once_the_user_moves_their_file_away_the_update_goes_through(emulator, drive_env,
                                                                     dest, tmp_path):
    blob2, tree2 = _staged_v1(emulator, dest, "folder to file")
    (dest / "ds/a/mine.txt").write_bytes(b"the user's")
    replace_on_drive("d/v.zip", blob2, tmp_path)
    assert run("pull", "drive:d/v.zip", str(dest), "-x", "-q")[0] == 1
    os.rename(dest / "ds/a/mine.txt", tmp_path / "mine.txt")
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "extract"  # downloaded already
    assert tree(dest) == {"v.zip": blob2, **tree2}


def test_a_folder_holding_another_archives_member_is_never_replaced(emulator, drive_env,
                                                                   dest, tmp_path):
    blob2, _ = _staged_v1(emulator, dest, "folder to file")
    emulator.add_file("d/other.zip", a_zip({"ds/a/other.txt": b"other's"}))
    assert run("pull", "drive:d/other.zip", str(dest), "-x", "-q")[0] == 0
    before = tree(dest)
    replace_on_drive("d/v.zip", blob2, tmp_path)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert code == 1
    assert err.strip() == f"Error: {_folder_message(dest)}"
    assert tree(dest) == {**before, "v.zip": blob2}


def test_a_folder_that_was_the_users_before_v1_merged_into_it_is_never_replaced(
        emulator, drive_env, dest, tmp_path):
    """v1 merged into a folder the user had: the stamp records the folder, but not what the
    user kept in it."""
    (dest / "ds/a").mkdir(parents=True)
    (dest / "ds/a/mine.txt").write_bytes(b"the user's, from before")
    emulator.add_file("d/v.zip", a_zip(FOLDER_V1))
    assert run("pull", "drive:d/v.zip", str(dest), "-x", "-q")[0] == 0
    blob2 = a_zip(FILE_V2)
    replace_on_drive("d/v.zip", blob2, tmp_path)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert code == 1
    assert err.strip() == f"Error: {_folder_message(dest)}"
    assert (dest / "ds/a/mine.txt").read_bytes() == b"the user's, from before"
    assert (dest / "ds/a/x").read_bytes() == b"x of v1"


def test_a_file_of_the_users_appearing_while_the_pull_waits_to_merge_is_kept(
        emulator, drive_env, dest, tmp_path):
    """The folder is judged again under the merge lock, as it is when the merge begins."""
    import threading

    from drivestage.extract.merging import merge_lock

    blob2, _ = _staged_v1(emulator, dest, "folder to file")
    replace_on_drive("d/v.zip", blob2, tmp_path)
    outcome: dict = {}
    with merge_lock(str(dest)):
        thread = threading.Thread(target=lambda: outcome.update(
            result=run("pull", "drive:d/v.zip", str(dest), "-x", "-q")))
        thread.start()
        # Decompressed and waiting for the lock: its temporary folder holds v2's ds/a.
        while not any((p / "ds/a").is_file() for p in dest.glob(".drivestage-extract-*")):
            assert thread.is_alive(), outcome
        (dest / "ds/a/mine.txt").write_bytes(b"the user's")
    thread.join(60)
    code, out, err = outcome["result"]
    assert code == 1
    assert err.strip() == f"Error: {_folder_message(dest)}"
    assert (dest / "ds/a/mine.txt").read_bytes() == b"the user's"
    assert (dest / "ds/a/x").read_bytes() == b"x of v1"


def test_links_in_dest_are_judged_without_the_links_of_the_folder_that_goes(
        emulator, drive_env, dest, tmp_path):
    """A link of v1 inside the folder goes with it; a link of the user's elsewhere that led
    inside DEST through it would lead outside once it is gone: the update is refused."""
    v1 = a_zip({"ds/a/sub/deep/f": b"f", "ds/keep.txt": b"kept"}, {"ds/a/lnk": "sub/deep"})
    emulator.add_file("d/v.zip", v1)
    assert run("pull", "drive:d/v.zip", str(dest), "-x", "-q")[0] == 0
    os.symlink("a/lnk/../../../..", dest / "ds/u")  # inside DEST now: DEST itself
    before = tree(dest)
    replace_on_drive("d/v.zip", a_zip(FILE_V2), tmp_path)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert code == 1
    assert err.strip() == (
        f"Error: v.zip: once its members are in place, the link {dest / 'ds/u'} "
        "(-> a/lnk/../../../..) already in the destination would resolve outside it; "
        "refusing the archive")
    assert tree(dest) == {**before, "v.zip": a_zip(FILE_V2)}


def _at_the_aside(monkeypatch, before=None, after=None) -> None:
    """Another program acting at the exact moment the merge puts DEST's ds/a aside into its
    temporary folder: ``before(aside path)`` just before that rename, ``after`` just after."""
    from drivestage.extract.tempdir import OLD_PREFIX

    real = os.rename

    def rename(src, dst, *args, **kwargs):
        aside = os.path.basename(os.fsdecode(dst)).startswith(OLD_PREFIX)
        where = os.path.join(f"/proc/self/fd/{kwargs.get('dst_dir_fd')}", os.fsdecode(dst))
        if aside and before is not None:
            before(where)
        real(src, dst, *args, **kwargs)
        if aside and after is not None:
            after(where)

    monkeypatch.setattr(os, "rename", rename)


def test_a_file_appearing_in_the_folder_just_before_it_is_put_aside_goes_back_with_it(
        emulator, drive_env, dest, tmp_path, monkeypatch):
    """Judged again once in the temporary folder (where nothing else writes): the folder
    goes back to its place with the other program's file, and the archive is refused."""
    blob2, _ = _staged_v1(emulator, dest, "folder to file")
    replace_on_drive("d/v.zip", blob2, tmp_path)
    _at_the_aside(monkeypatch, before=lambda _: (dest / "ds/a/mine.txt").write_bytes(b"mine"))
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    monkeypatch.undo()
    assert code == 1
    assert err.strip() == f"Error: {_folder_message(dest)}"
    assert {k: v for k, v in tree(dest).items() if k.startswith("ds/a")} == {
        "ds/a/x": b"x of v1", "ds/a/sub/y": b"y of v1", "ds/a/lnk": ("->", "x"),
        "ds/a/mine.txt": b"mine"}
    assert leftovers(dest) == []


def test_a_folder_that_cannot_go_back_is_kept_beside_its_place_and_named(
        emulator, drive_env, dest, tmp_path, monkeypatch):
    """Something wrote into the folder as it was put aside, and another program took its
    path at once: the folder is kept beside that path (never in the temporary folder, which
    goes), and the message names it."""
    blob2, _ = _staged_v1(emulator, dest, "folder to file")
    replace_on_drive("d/v.zip", blob2, tmp_path)

    def another_program(aside):
        with open(os.path.join(aside, "mine.txt"), "wb") as fh:  # a handle opened before
            fh.write(b"mine")
        (dest / "ds/a").write_bytes(b"another program's")

    _at_the_aside(monkeypatch, after=another_program)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    monkeypatch.undo()
    assert code == 1
    [kept] = [n for n in os.listdir(dest / "ds") if n.startswith("a.kept-")]
    assert err.strip() == (
        f"Error: {dest / 'ds/a'} kept changing while v.zip was moved into place; is another "
        f"program writing there? The folder that was there is now {dest / 'ds' / kept}; "
        "extract again")
    assert (dest / "ds/a").read_bytes() == b"another program's"
    assert tree(dest / "ds" / kept) == {"x": b"x of v1", "sub/y": b"y of v1",
                                        "lnk": ("->", "x"), "mine.txt": b"mine"}
    assert leftovers(dest) == []


def _another_programs_folder_at_the_path(dest):
    def act(aside):
        (dest / "ds/a").mkdir()
        (dest / "ds/a/theirs.txt").write_bytes(b"another program's")
    return act


def test_a_file_put_aside_for_a_folder_is_kept_when_the_folder_cannot_take_its_path(
        emulator, drive_env, dest, tmp_path, monkeypatch):
    """The user's file ds/a, where the archive has a folder, is put aside; another program
    makes a folder at ds/a at once, so the member folder cannot be renamed there and
    merges into theirs. The user's file is kept beside its path (it was lost with the
    temporary folder) and the log says where."""
    dest.mkdir()
    (dest / "ds").mkdir()
    (dest / "ds/a").write_bytes(b"the user's file")
    emulator.add_file("d/v.zip", a_zip(FOLDER_V2))
    _at_the_aside(monkeypatch, after=_another_programs_folder_at_the_path(dest))
    # --force: a file no extraction wrote is replaced only so (clobber32)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q", "--force")
    monkeypatch.undo()
    assert code == 0, err
    [kept] = [n for n in os.listdir(dest / "ds") if n.startswith("a.kept-")]
    assert tree(dest) == {"v.zip": a_zip(FOLDER_V2), **FOLDER_V2,
                          "ds/a/theirs.txt": b"another program's",
                          f"ds/{kept}": b"the user's file"}
    assert f"what was there is now {dest / 'ds' / kept}" in err
    assert leftovers(dest) == []


def test_without_hard_links_the_file_put_aside_is_kept_too(emulator, drive_env, dest,
                                                            tmp_path, monkeypatch):
    """The same where the file system makes no hard links (vfat, some FUSE mounts: link()
    fails with EPERM), which the put-back used and then left the file in the temporary
    folder."""
    dest.mkdir()
    (dest / "ds").mkdir()
    (dest / "ds/a").write_bytes(b"the user's file")
    emulator.add_file("d/v.zip", a_zip(FOLDER_V2))
    _at_the_aside(monkeypatch, after=_another_programs_folder_at_the_path(dest))

    def no_links(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q", "--force")
    monkeypatch.undo()
    assert code == 0, err
    [kept] = [n for n in os.listdir(dest / "ds") if n.startswith("a.kept-")]
    assert (dest / "ds" / kept).read_bytes() == b"the user's file"
    assert (dest / "ds/a/theirs.txt").read_bytes() == b"another program's"
    assert leftovers(dest) == []


# ------------------------------------------------------------------------- killed

#: A drivestage pull in a child that stops (and waits for its SIGKILL) at one step of the
#: merge: right after DEST's entry in the way is moved into the temporary folder ("aside"),
#: after the new member took its place ("placed"), after the merge ("merged"), after the
#: old version's members were removed ("removed"; the stamp not yet written).
CHILD = r"""
import os, signal, sys
moment, marker = sys.argv[1], sys.argv[2]
import drivestage.extract as extract
from drivestage.extract import job
from drivestage.extract.tempdir import OLD_PREFIX
from drivestage.cli import cli

def stop():
    with open(marker, "w"):
        pass
    signal.pause()

seen = []
real_rename = os.rename
def rename(src, dst, *args, **kwargs):
    real_rename(src, dst, *args, **kwargs)
    if os.path.basename(os.fsdecode(dst)).startswith(OLD_PREFIX):
        seen.append("aside")
        if moment == "aside":
            stop()
    elif seen == ["aside"]:
        seen.append("placed")
        if moment == "placed":
            stop()
os.rename = rename

def after(module, name, step):
    real = getattr(module, name)
    def wrapped(*args, **kwargs):
        out = real(*args, **kwargs)
        if moment == step:
            assert seen == ["aside", "placed"], seen
            stop()
        return out
    setattr(module, name, wrapped)

after(job, "merge", "merged")
after(extract, "remove_members", "removed")
cli.main(args=sys.argv[3:], prog_name="drivestage")
"""

MOMENTS = ["aside", "placed", "merged", "removed"]


@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("moment", MOMENTS)
def test_sigkill_at_each_step_of_the_merge_then_a_rerun_completes(emulator, drive_env, dest,
                                                                  tmp_path, direction, moment):
    blob2, tree2 = _staged_v1(emulator, dest, direction)
    _, tree1, _, _ = DIRECTIONS[direction]
    (dest / "mine.txt").write_bytes(b"the user's")
    (dest / "ds/mine.txt").write_bytes(b"the user's too")
    replace_on_drive("d/v.zip", blob2, tmp_path)
    marker = tmp_path / "stopped"
    # Forked from the CLI's fork server (its imports done): the names CHILD patches are
    # looked up as they are called (os.rename; job.merge, and remove_members, imported by
    # stage_extraction as it runs), so they stop it there as in a fresh interpreter.
    proc = cli_server().popen([moment, str(marker), "pull", "drive:d/v.zip", str(dest), "-x",
                               "-q"], script=CHILD, env=child_env(emulator),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sigkill_when(proc, marker.exists, f"the pull never got to {moment!r}")
    users = {"mine.txt": b"the user's", "ds/mine.txt": b"the user's too"}
    now = tree(dest)
    assert {k: now.get(k) for k in users} == users
    a_before = {k: v for k, v in tree1.items() if k.startswith("ds/a")}
    a_after = {k: v for k, v in tree2.items() if k.startswith("ds/a")}
    a_now = {k: v for k, v in now.items() if k == "ds/a" or k.startswith("ds/a/")}
    if moment == "aside":  # DEST's ds/a is in the dead pull's temporary folder
        assert a_now == {}
    else:  # the new ds/a is in place, and only it
        assert a_now == a_after
    assert a_before  # (what v1 had there, for the record of what went)
    emulator.clear_requests()
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "extract"  # downloaded already: nothing fetched
    assert not [r for r in emulator.requests if r.query.get("alt") == "media"]
    assert tree(dest) == {"v.zip": blob2, **tree2, **users}
    assert leftovers(dest) == []


# ------------------------------------------------------------------------- at once

@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_two_pulls_of_the_update_at_once(emulator, drive_env, dest, tmp_path, direction):
    blob2, tree2 = _staged_v1(emulator, dest, direction)
    replace_on_drive("d/v.zip", blob2, tmp_path)
    procs = [cli_server().popen(["pull", "drive:d/v.zip", str(dest), "-x", "-q", "--json"],
                                env=child_env(emulator), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    assert sorted(json.loads(o)["action"] for o, _ in outs) == ["cached", "update"]
    assert tree(dest) == {"v.zip": blob2, **tree2}
    assert leftovers(dest) == []


def test_two_archives_at_once_one_changing_a_kind_where_the_other_writes(emulator, drive_env,
                                                                         dest, tmp_path):
    """v2 of one archive turns ds/a into a file while another archive's pull brings
    ds/a/other.txt: whichever merges first, the other archive's member is never lost."""
    blob2, _ = _staged_v1(emulator, dest, "folder to file")
    replace_on_drive("d/v.zip", blob2, tmp_path)
    emulator.add_file("d/other.zip", a_zip({"ds/a/other.txt": b"other's"}))
    procs = [cli_server().popen(["pull", f"drive:d/{name}", str(dest), "-x", "-q"],
                                env=child_env(emulator), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
             for name in ("v.zip", "other.zip")]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    # other.zip's folder replaces a file (as unzip does) whenever it merges; v2 goes through
    # when it merges first, and is refused when other.zip's member is in ds/a already.
    assert codes[1] == 0, outs[1]
    assert tree(dest)["ds/a/other.txt"] == b"other's"
    if codes[0] != 0:
        # Refused for the folder other.zip made, or (when other.zip wrote into ds/a while
        # v2's checks ran: on a loaded machine) for the change seen under way.
        got = outs[0][1].decode().strip()
        assert got in (f"Error: {_folder_message(dest)}",
                       f"Error: {dest / 'ds' / 'a'} changed while drive:d/v.zip was extracted "
                       "(another program or pull wrote there); run the pull again"), got
    assert leftovers(dest) == []
