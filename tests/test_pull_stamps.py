"""Stamps and the update rule of `pull --extract` (issue 10): a stamp belongs to one remote
file, says "staged" only for members in place, and an old version's members go only through
the records of the extraction that wrote them, whatever path re-stages the archive."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

import drivestage
from _archives import a_fixed_zip as a_zip
from _kill import sigkill_when
from drivestage import download as dl
from drivestage.extract import extract_archive
from drivestage.extract.merging import merge_lock
from _cli import run
from _forkcli import cli_server
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "data"


def tree(root) -> dict:
    """Every file and link under ``root`` but drivestage's bookkeeping: bytes, or ('->', t)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".drivestage"]
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            out[rel] = ("->", os.readlink(path)) if os.path.islink(path) else \
                open(path, "rb").read()
    return out


def replace_on_drive(path: str, data: bytes, tmp_path) -> None:
    """A new version of ``path`` on Drive under the same id (as Drive's "manage versions")."""
    store = drivestage.connect()
    old = store.resolve(path)
    local = tmp_path / "upload.bin"
    local.write_bytes(data)
    parent = store.resolve(path.rsplit("/", 1)[0])
    assert store.upload(str(local), parent, old.name, replace=old).id == old.id


V1 = {"ds/keep.txt": b"kept", "ds/gone.txt": b"only in v1", "ds/sub/old.txt": b"old"}
V2 = {"ds/keep.txt": b"kept, v2", "ds/new.txt": b"new in v2"}


# ------------------------------------------------------------------------- identity

def test_two_remote_files_of_one_name_keep_their_own_stamps(emulator, drive_env, dest):
    emulator.add_file("one/data.zip", a_zip({"one/a.txt": b"from one"}))
    emulator.add_file("two/data.zip", a_zip({"two/b.txt": b"from two"}))
    assert run("pull", "drive:one/data.zip", str(dest), "-x", "-q")[0] == 0
    for src in ("drive:two/data.zip", "drive:one/data.zip"):
        code, out, err = run("pull", src, str(dest), "-x", "-q")
        assert code == 0, err
        assert (dest / "one/a.txt").read_bytes() == b"from one"
        assert (dest / "two/b.txt").read_bytes() == b"from two"
    # DEST/data.zip is one file, so each pull replaces the other's copy of it; the members
    # stay, each listed by its own stamp.
    stamps = [json.loads(p.read_text()) for p in (dest / ".drivestage").glob("data.zip@*.json")]
    assert sorted((s["src"], [m[0] for m in s["members"]]) for s in stamps) == [
        ("drive:one/data.zip", ["one/a.txt"]), ("drive:two/data.zip", ["two/b.txt"])]


# ------------------------------------------------------------------------- repair

@pytest.mark.parametrize("damage", ["file-removed", "file-resized", "folder-removed",
                                    "link-became-file", "file-became-folder"])
def test_a_rerun_repairs_members_that_are_not_in_place(emulator, drive_env, dest, damage):
    members = {"ds/a.txt": b"alpha", "ds/sub/b.txt": b"beta"}
    links = {"ds/to_a": "a.txt"}  # a 5-byte target: the same size as a.txt
    emulator.add_file("d.zip", a_zip(members, links))
    assert run("pull", "drive:d.zip", str(dest), "-x", "-q")[0] == 0
    staged = tree(dest)
    if damage == "file-removed":
        os.unlink(dest / "ds/a.txt")
    elif damage == "file-resized":
        (dest / "ds/a.txt").write_bytes(b"alpha and more")
    elif damage == "folder-removed":
        shutil.rmtree(dest / "ds/sub")
    elif damage == "link-became-file":
        os.unlink(dest / "ds/to_a")
        (dest / "ds/to_a").write_bytes(b"a.txt")  # a file of the link's size
    else:
        os.unlink(dest / "ds/sub/b.txt")
        os.mkdir(dest / "ds/sub/b.txt")
    emulator.clear_requests()
    code, out, err = run("pull", "drive:d.zip", str(dest), "-x", "--json")
    if damage == "file-became-folder":  # never replaced: a folder may hold the user's files
        assert code == 1 and "is a folder" in err
        assert "b.txt" in err
        return
    assert code == 0, err
    assert json.loads(out)["action"] == "extract"
    assert tree(dest) == staged
    assert not [r for r in emulator.requests if r.query.get("alt") == "media"]
    code, out, err = run("pull", "drive:d.zip", str(dest), "-x", "--json")
    assert json.loads(out)["action"] == "cached"


def test_archives_of_a_folder_sharing_vocdevkit_all_land_and_stay_staged(emulator, drive_env,
                                                                          tmp_path):
    expected = {}
    for year in range(8):
        members = {f"VOCdevkit/VOC{year}/Annotations/{i}.xml": f"<{year}.{i}>".encode()
                   for i in range(5)}
        members[f"VOCdevkit/common/{year}.txt"] = b"x" * year
        emulator.add_file(f"V/VOC{year}.zip", a_zip(members))
        expected.update(members)
    dest = tmp_path / "d"
    code, out, err = run("pull", "drive:V", str(dest), "-x", "-q", "-j", "4")
    assert code == 0, err
    staged = tree(dest / "V")
    for rel, data in expected.items():
        assert staged[rel] == data
    code, out, err = run("pull", "drive:V", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"cached": 8}


def test_a_folder_pull_merges_nested_archives_under_its_roots_lock(emulator, drive_env,
                                                                   tmp_path):
    emulator.add_file("R/sub/b.zip", a_zip({"x/b.txt": b"b"}))
    dest = tmp_path / "d"
    root = dest / "R"
    root.mkdir(parents=True)
    done = threading.Event()
    result = {}

    def pull():
        try:
            result["r"] = drivestage.pull("drive:R", str(dest), extract=True, quiet=True)
        except BaseException as exc:  # pragma: no cover - reported below
            result["e"] = exc
        done.set()

    with merge_lock(str(root)):
        worker = threading.Thread(target=pull, daemon=True)
        worker.start()
        # The archive is downloaded and decompressed into its temporary folder...
        deadline = time.monotonic() + 30
        while not any(p.name.startswith(".drivestage-extract-") and (p / "x/b.txt").exists()
                      for p in (root / "sub").glob(".*")):
            assert not done.is_set(), result
            assert time.monotonic() < deadline, "the extraction never started"
            time.sleep(0.01)
        # ...and its merge into R/sub waits for the lock of the folder pull's root.
        assert not done.wait(0.5)
        assert not (root / "sub/x/b.txt").exists()
    assert done.wait(30) and "e" not in result, result
    assert (root / "sub/x/b.txt").read_bytes() == b"b"


# ------------------------------------------------------------------------- the update rule

def _staged_v1(emulator, dest, tmp_path):
    emulator.add_file("d/v.zip", a_zip(V1))
    assert run("pull", "drive:d/v.zip", str(dest), "-x", "-q")[0] == 0
    assert tree(dest)["ds/gone.txt"] == b"only in v1"


def test_a_new_version_under_the_same_id_removes_exactly_the_old_members(
        emulator, drive_env, dest, tmp_path):
    _staged_v1(emulator, dest, tmp_path)
    (dest / "ds/sub/old.txt").write_bytes(b"edited by the user")  # no longer what v1 wrote
    (dest / "ds/mine.txt").write_bytes(b"the user's")
    replace_on_drive("d/v.zip", a_zip(V2), tmp_path)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "update"
    assert tree(dest) == {"v.zip": a_zip(V2), **V2, "ds/sub/old.txt": b"edited by the user",
                          "ds/mine.txt": b"the user's"}


def test_a_new_file_at_the_same_path_is_an_update_of_it(emulator, drive_env, dest, tmp_path):
    _staged_v1(emulator, dest, tmp_path)
    store = drivestage.connect()
    store.delete(store.resolve("d/v.zip"))
    emulator.add_file("d/v.zip", a_zip(V2))
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "update"
    assert tree(dest) == {"v.zip": a_zip(V2), **V2}
    assert len(os.listdir(dest / ".drivestage")) <= 3  # one stamp, its lock, the merge lock


def test_force_with_a_new_version_removes_the_old_members(emulator, drive_env, dest,
                                                          tmp_path):
    _staged_v1(emulator, dest, tmp_path)
    replace_on_drive("d/v.zip", a_zip(V2), tmp_path)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--force", "-q")
    assert code == 0, err
    assert tree(dest) == {"v.zip": a_zip(V2), **V2}


def test_force_on_the_same_version_keeps_everything(emulator, drive_env, dest, tmp_path):
    _staged_v1(emulator, dest, tmp_path)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--force", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "download"
    assert tree(dest) == {"v.zip": a_zip(V1), **V1}


def _env(emulator):
    return dict(os.environ, DRIVESTAGE_API_ROOT=emulator.url, DRIVESTAGE_TOKEN="test-token",
                DRIVESTAGE_RETRY_BASE="0.001")


@pytest.mark.parametrize("moment", ["mid-download", "before-the-merge"])
def test_sigkill_during_an_update_then_a_rerun_removes_the_old_members(
        emulator, drive_env, dest, tmp_path, moment):
    _staged_v1(emulator, dest, tmp_path)
    v2 = {**V2, "ds/big.bin": os.urandom(2 << 20)}
    replace_on_drive("d/v.zip", a_zip(v2), tmp_path)
    entry = drivestage.connect().resolve("d/v.zip")
    partial = dl.partial_path(str(dest / "v.zip"), entry)
    if moment == "mid-download":
        emulator.faults.throttle(1 << 20)  # the kill lands mid-download on any machine
        ready = lambda: os.path.exists(partial) and os.path.getsize(partial) >= 64 << 10  # noqa
    else:
        # v2 is downloaded and decompressed, and its merge waits for the lock held here.
        def ready():
            return any((p / "ds/big.bin").exists() and (p / "ds/big.bin").stat().st_size
                       == 2 << 20 for p in dest.glob(".drivestage-extract-*"))
    with merge_lock(str(dest)) if moment != "mid-download" else _nothing():
        proc = cli_server().popen(
            ["pull", "drive:d/v.zip", str(dest), "-x",
             "-q", "--chunk-size", "64K"], env=_env(emulator), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        sigkill_when(proc, ready)
    emulator.faults.throttle(None)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert code == 0, err
    # (resume or update: how much of the partial its record held when the kill came)
    assert json.loads(out)["action"] in ("resume", "update", "extract", "verified")
    assert tree(dest) == {"v.zip": a_zip(v2), **v2}


@contextlib.contextmanager
def _nothing():
    yield


def test_an_old_stamp_without_records_never_removes_anything(emulator, drive_env, dest,
                                                             tmp_path, caplog):
    emulator.add_file("d/v.zip", a_zip(V1))
    entry = drivestage.connect().resolve("d/v.zip")
    dest.mkdir()
    (dest / "v.zip").write_bytes(a_zip(V1))
    extract_archive(str(dest / "v.zip"), str(dest))
    (dest / "ds/sub/old.txt").write_bytes(b"new")  # the user's, of the size v1's had
    # The stamp drivestage 0.1.0 wrote: members as [path, size], keyed by name.
    (dest / ".drivestage").mkdir(exist_ok=True)
    st = (dest / "v.zip").stat()
    (dest / ".drivestage/v.zip.json").write_text(json.dumps({
        "version": 1, "src": "drive:d/v.zip", "id": entry.id, "name": "v.zip",
        "parent_id": entry.parent_id, "md5": entry.md5, "size": entry.size,
        "mtime_ns": st.st_mtime_ns, "extracted": True,
        "members": [["ds", -1], ["ds/keep.txt", 4], ["ds/gone.txt", 10], ["ds/sub", -1],
                    ["ds/sub/old.txt", 3]]}))
    emulator.clear_requests()
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "cached"  # an intact 0.1.0 copy is not staged again
    replace_on_drive("d/v.zip", a_zip(V2), tmp_path)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "update"
    # Nothing proves the old members are still what 0.1.0 wrote: none is removed, and the
    # warning says so.
    assert tree(dest) == {"v.zip": a_zip(V2), **V2, "ds/gone.txt": b"only in v1",
                          "ds/sub/old.txt": b"new"}
    assert "3 members of the previous version of drive:d/v.zip were not removed" in err
    assert "remove them from " in err
    assert not (dest / ".drivestage/v.zip.json").exists()


# ------------------------------------------------------------------------- reserved names

@pytest.mark.parametrize("name", [".drivestage", ".DriveStage", ".drivestage-extract-1-ab12",
                                  ".drivestage-replaced-1", ".x.zip.0123456789abcdef.partial",
                                  ".x.zip.0123456789abcdef.ranges",
                                  "..x.zip.0123456789abcdef.ranges.k3j9.tmp"])
def test_a_remote_item_with_a_reserved_name_is_refused(emulator, drive_env, tmp_path, name):
    """Named itself; a folder pull leaves it out (a Drive mount synced it from a DEST in
    it: drivestage's own state, never data; attackpull35)."""
    emulator.add_file(f"R/{name}", b"{}")
    emulator.add_file("R/ok.txt", b"ok")
    code, out, err = run("pull", "drive:R", str(tmp_path / "d"))
    assert code == 0, err
    copy = tmp_path / "d" / "R"
    assert sorted(os.listdir(copy)) == [".drivestage", "ok.txt"]
    assert [n.split("@")[0] for n in os.listdir(copy / ".drivestage")
            if n.endswith(".json")] == ["ok.txt"]   # the pull's own stamp alone
    code, out, err = run("pull", f"drive:R/{name}", str(tmp_path / "e"))
    assert code == 2, err
    assert f"the name {name} is where drivestage keeps its stamps and locks" in err
    assert not (tmp_path / "e" / name).exists()


def test_an_update_never_removes_a_member_another_stamp_lists(emulator, drive_env, dest,
                                                              tmp_path):
    emulator.add_file("d/b.zip", a_zip({"shared/x.txt": b"b's", "b/only.txt": b"b"}))
    emulator.add_file("d/a.zip", a_zip({"shared/x.txt": b"a's, longer", "a/only.txt": b"a"}))
    assert run("pull", "drive:d/b.zip", str(dest), "-x", "-q")[0] == 0
    assert run("pull", "drive:d/a.zip", str(dest), "-x", "-q")[0] == 0  # a's x.txt wins
    replace_on_drive("d/a.zip", a_zip({"a/only.txt": b"a2"}), tmp_path)
    assert run("pull", "drive:d/a.zip", str(dest), "-x", "-q")[0] == 0
    # a wrote x.txt last, but b's stamp stands for it too: it stays, and b's rerun puts
    # b's version back.
    assert (dest / "shared/x.txt").read_bytes() == b"a's, longer"
    code, out, err = run("pull", "drive:d/b.zip", str(dest), "-x", "--json")
    assert code == 0 and json.loads(out)["action"] == "extract"
    assert tree(dest)["shared/x.txt"] == b"b's"


# ------------------------------------------------------------------------- properties
# Random sequences of pulls of two archives (new versions among them), user edits and
# forced pulls into one DEST, from a plain folder (the store a Drive mount is): nothing
# outside DEST changes, the archive just pulled has every member in place (with its bytes
# when it was extracted, of its kind and size when the stamp said it was staged),
# a file of the user's at a path no archive has is never removed, and a path only an old
# version had is gone once no stamp stands for it and nobody changed it.

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NAMES = ["VOCdevkit/a.txt", "VOCdevkit/b.txt", "VOCdevkit/sub/c.txt", "d.txt", "VOCdevkit/e",
         "VOCdevkit/sub"]  # the last: a member that changes kind between versions
contents = st.dictionaries(st.sampled_from(NAMES), st.binary(min_size=0, max_size=6),
                           min_size=1, max_size=4)
steps = st.lists(st.one_of(
    st.tuples(st.just("pull"), st.sampled_from(["a", "b"]), st.booleans()),
    st.tuples(st.just("version"), st.sampled_from(["a", "b"]), contents),
    st.tuples(st.just("edit"), st.sampled_from(NAMES + ["mine.txt"]), st.binary(max_size=4)),
), min_size=1, max_size=7)


def _consistent(members: dict) -> dict:
    """No member both a file and a folder (an archive like that is refused anyway)."""
    out = {}
    for name, data in sorted(members.items()):
        if any(name.startswith(other + "/") or other.startswith(name + "/") for other in out):
            continue
        out[name] = data
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(first_a=contents, first_b=contents, steps=steps)
# Sequences known to matter, tried on every run: --force with a new version, an update of
# one archive over a path the other one has, a member the user edited before an update.
@example(first_a={"d.txt": b"1", "VOCdevkit/a.txt": b"a"}, first_b={"VOCdevkit/b.txt": b"b"},
         steps=[("pull", "a", False), ("version", "a", {"d.txt": b"2"}), ("pull", "a", True)])
@example(first_a={"d.txt": b"a"}, first_b={"d.txt": b"bb"},
         steps=[("pull", "b", False), ("pull", "a", False), ("version", "a", {"e": b"x"}),
                ("pull", "a", False), ("pull", "b", False)])
@example(first_a={"d.txt": b"1", "VOCdevkit/a.txt": b"a"}, first_b={"VOCdevkit/b.txt": b"b"},
         steps=[("pull", "a", False), ("edit", "d.txt", b"9"),
                ("version", "a", {"VOCdevkit/a.txt": b"a2"}), ("pull", "a", False)])
@example(first_a={"VOCdevkit/sub/c.txt": b"c"}, first_b={"d.txt": b"b"},
         steps=[("pull", "a", False), ("edit", "mine.txt", b"u"),
                ("version", "a", {"VOCdevkit/sub": b"a file now"}), ("pull", "a", False)])
def test_random_pulls_edits_and_versions_keep_the_invariants(tmp_path_factory, first_a,
                                                             first_b, steps):
    root = tmp_path_factory.mktemp("prop")
    mount, dest = root / "mount", root / "dest"
    mount.mkdir()
    current = {"a": _consistent(first_a), "b": _consistent(first_b)}
    for key, members in current.items():
        (mount / f"{key}.zip").write_bytes(a_zip(members))
    users: dict[str, bytes] = {}
    stamped: dict[str, set] = {}      # what each archive's last extraction wrote
    last_writer: dict[str, str] = {}  # who wrote each path last: "a", "b" or "user"
    for step in steps:
        if step[0] == "version":
            current[step[1]] = _consistent(step[2])
            (mount / f"{step[1]}.zip").write_bytes(a_zip(current[step[1]]))
            continue
        if step[0] == "edit":
            path = dest / step[1]
            if dest.exists() and not path.is_dir() and path.parent.is_dir():
                path.write_bytes(step[2])
                users[step[1]] = step[2]
                last_writer[step[1]] = "user"
            continue
        _, key, force = step
        args = ["pull", str(mount / f"{key}.zip"), str(dest), "-x", "-q", "--json"] + \
            (["--force"] if force else [])
        code, out, err = run(*args)
        if code != 0:  # refused (a file where DEST has a folder): DEST as it was is fine
            if "not from an extraction" in err:   # a file of the user's at the archive's path
                paths = set(current[key]) | {n.rsplit("/", i)[0] for n in current[key]
                                             for i in range(1, n.count("/") + 1)}
                assert not force and any(n in paths for n in users), err   # (clobber32)
                continue
            assert "is a folder" in err or "is a file" in err, err
            continue
        action = json.loads(out)["action"]
        staged = tree(dest)
        assert sorted(os.listdir(root)) == ["dest", "mount"]  # nothing outside DEST
        for name, data in current[key].items():
            if action == "cached":  # in place: present, of its kind and size (not hashed)
                assert len(staged[name]) == len(data), (name, step)
            else:
                assert staged[name] == data, (name, step)
        if action != "cached":
            other = stamped.get("b" if key == "a" else "a", set())
            for name in stamped.get(key, set()) - set(current[key]):
                if last_writer.get(name) == key and name not in other:
                    assert name not in staged, (name, step)  # the old version's, unchanged
            stamped[key] = set(current[key])
            for name in current[key]:
                users.pop(name, None)  # the archive wrote it: the archive's now
                last_writer[name] = key
        for name, data in users.items():
            if not any(name == m or m.startswith(name + "/") for c in current.values()
                       for m in c):
                assert staged.get(name) == data, (name, step)  # the user's, never removed
