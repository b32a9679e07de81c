"""Stamps and the update rule of `pull --extract` (issue 10): a stamp belongs to one remote
file, says "staged" only for members in place, and an old version's members go only through
the records of the extraction that wrote them, whatever path re-stages the archive."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile

import pytest
from click.testing import CliRunner

import drivestage
from _kill import sigkill_when
from drivestage import download as dl
from drivestage.cli import cli
from drivestage.extract import extract_archive
from drivestage.extract.merging import merge_lock


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter, for every test here."""


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "data"


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def a_zip(members: dict, links: dict = {}) -> bytes:
    """The same bytes for the same members (fixed member times)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), data)
        for name, target in links.items():
            info = zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6))
            info.create_system = 3
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return buf.getvalue()


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
        proc = subprocess.Popen(
            [sys.executable, "-m", "drivestage", "pull", "drive:d/v.zip", str(dest), "-x",
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
    assert not (dest / ".drivestage/v.zip.json").exists()


# ------------------------------------------------------------------------- reserved names

@pytest.mark.parametrize("name", [".drivestage", ".DriveStage", ".drivestage-extract-1-ab12",
                                  ".drivestage-replaced-1", ".x.zip.0123456789abcdef.partial",
                                  ".x.zip.0123456789abcdef.ranges"])
def test_a_remote_item_with_a_reserved_name_is_refused(emulator, drive_env, tmp_path, name):
    emulator.add_file(f"R/{name}", b"{}")
    emulator.add_file("R/ok.txt", b"ok")
    code, out, err = run("pull", "drive:R", str(tmp_path / "d"))
    assert code == 2, err
    assert f"the name {name} is where drivestage keeps its stamps and locks" in err
    assert tree(tmp_path / "d") == {}
    code, out, err = run("pull", f"drive:R/{name}", str(tmp_path / "e"))
    assert code == 2, err
    assert f"the name {name} is where drivestage keeps its stamps and locks" in err
    assert not (tmp_path / "e" / name).exists()
