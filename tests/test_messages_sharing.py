"""docs/troubleshooting.md, "Shortcuts, links and shared items": each message made to happen
(see tests/_messages.py).

The commands run in this process (click's CliRunner) against the emulator, which models
shortcuts, sharing, resource keys and shared-drive roles as Drive has them; what Drive itself
never makes (a shortcut to a shortcut, a shortcut without a target) is set up in the
emulator's store, as another server would answer it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os

import pytest

from _envs import env_user_lines  # noqa: F401  (a fixture)
from _messages import command_error as error
from _messages import error_text, log_text, renders, shown
from click.testing import CliRunner
from drivestage.cli import cli
from drivestage.download import download
from drivestage.errors import PermissionDeniedError

TEACHER = "teacher@school.edu"


def _src(tmp_path, **files: bytes) -> str:
    src = tmp_path / "logs"
    src.mkdir(exist_ok=True)
    for name, data in files.items():
        (src / name).write_bytes(data)
    return str(src)


# --------------------------------------------------------------------------- shortcuts

@renders("is a shortcut to an item that is gone or no longer shared with you")
def test_a_shortcut_whose_target_was_unshared(emulator, env, tmp_path):
    gone = emulator.add_file("x/old.zip", b"old", owner=TEACHER, shared_with_me=True)
    emulator.add_shortcut("course/old.zip", gone)
    emulator.unshare(gone)
    line = error("pull", "-q", "drive:course/old.zip", str(tmp_path / "d"))
    shown("is a shortcut to an item that is gone or no longer shared with you", line)
    assert line.startswith("Error: drive:course/old.zip is a shortcut")
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


@renders("is a shortcut to … a folder it sits in: a walk through it would never end")
def test_a_folder_shortcut_to_a_folder_above_it(emulator, env, tmp_path):
    top = emulator.add_folder("A")
    emulator.add_file("A/a.txt", b"a")
    emulator.add_shortcut("A/B/loop", top)
    line = error("pull", "-q", "drive:A", str(tmp_path / "d"))
    shown("is a shortcut to … a folder it sits in: a walk through it would never end", line)
    assert "drive:A/B/loop is a shortcut to drive:A, a folder it sits in" in line
    assert "--exclude 'loop'" in line


@renders("is the folder … again (a shortcut to it, or a folder with two parents)")
def test_two_shortcuts_to_one_folder_in_a_folder_pull(emulator, env, tmp_path):
    emulator.add_folder("L0")
    inner = emulator.add_folder("L1")
    emulator.add_file("L1/leaf.txt", b"x")
    emulator.add_shortcut("L0/a", inner)
    emulator.add_shortcut("L0/b", inner)
    line = error("pull", "-q", "drive:L0", str(tmp_path / "d"))
    shown("is the folder … again (a shortcut to it, or a folder with two parents)", line)
    assert "drive:L0/b is the folder drive:L0/a again" in line
    assert not list((tmp_path / "d").rglob("leaf.txt"))


@renders("is a shortcut that leads back to itself")
def test_two_shortcuts_that_point_at_each_other(emulator, env, tmp_path):
    target = emulator.add_file("x/data.bin", b"data")
    first = emulator.add_shortcut("x/one", target)
    second = emulator.add_shortcut("two", first)
    # Drive makes no shortcut to a shortcut; a server that does may close the ring.
    emulator.store.update(first, shortcut=dict(emulator.store.get(first)["shortcut"],
                                               targetId=second))
    line = error("pull", "-q", "drive:two", str(tmp_path / "d"))
    shown("is a shortcut that leads back to itself", line)
    assert f"(through id {second})" in line
    assert not (tmp_path / "d" / "two").exists()


@renders("the server answered a shortcut without a target id")
def test_a_shortcut_without_a_target(emulator, env, tmp_path):
    target = emulator.add_file("x/w.pth", b"w")
    short = emulator.add_shortcut("Models/w.pth", target)
    # The emulator leaves empty fields out of shortcutDetails, as Drive does.
    emulator.store.update(short, shortcut=dict(emulator.store.get(short)["shortcut"],
                                               targetId=""))
    line = error("pull", "-q", "drive:Models/w.pth", str(tmp_path / "d"))
    shown("the server answered a shortcut without a target id", line)
    assert not (tmp_path / "d" / "w.pth").exists()


@renders("is a shortcut; drivestage does not replace a shortcut's target")
def test_a_push_over_a_file_shortcut(emulator, env, tmp_path):
    target = emulator.add_file("keep/best.pt", b"theirs")
    emulator.add_shortcut("run/best.pt", target)
    line = error("push", _src(tmp_path, **{"best.pt": b"mine!"}), "drive:run")
    shown("is a shortcut; drivestage does not replace a shortcut's target", line)
    assert line.startswith("Error: drive:run/best.pt is a shortcut;")
    assert emulator.read_bytes(target) == b"theirs"


# --------------------------------------------------------------------------- downloads off

def _classroom(emulator, restricted: str = "VOC07.zip") -> dict[str, str]:
    """The teacher's dataset folder shared read-only (a shortcut to it in My Drive), with
    downloads off for one file."""
    folder = emulator.add_folder("VOC_datasets", owner=TEACHER, shared_with_me="reader")
    emulator.add_shortcut("VOC_datasets", folder)
    ids = {name: emulator.add_file(f"VOC_datasets/{name}", name.encode() * 100, owner=TEACHER)
           for name in ("README.txt", "VOC07.zip")}
    emulator.restrict_download(ids[restricted])
    return ids


@renders("has turned off downloading for viewers and commenters")
def test_a_file_that_viewers_may_not_download(emulator, env, tmp_path):
    _classroom(emulator)
    emulator.clear_requests()
    line = error("pull", "-q", "drive:VOC_datasets/VOC07.zip", str(tmp_path / "d"))
    shown("has turned off downloading for viewers and commenters", line)
    assert line.startswith("Error: drive:VOC_datasets/VOC07.zip: its owner has turned off "
                           "downloading for viewers and commenters"), line
    assert "Ask the owner" in line
    # Known from the file's metadata: not one media request, nothing written.
    assert [r.kind for r in emulator.requests if r.kind == "media.download"] == []
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


@renders("has turned off downloading for viewers and commenters")
def test_a_folder_pull_with_one_file_viewers_may_not_download(emulator, env, tmp_path):
    _classroom(emulator)
    emulator.clear_requests()
    line = error("pull", "-q", "drive:VOC_datasets", str(tmp_path / "d"))
    shown("has turned off downloading for viewers and commenters", line)
    assert "drive:VOC_datasets/VOC07.zip: its owner" in line
    assert "--exclude 'VOC07.zip'" in line
    # Found while listing: nothing downloaded before the pull failed.
    assert [r.kind for r in emulator.requests if r.kind == "media.download"] == []
    assert not (tmp_path / "d").exists() or not list((tmp_path / "d").rglob("*.*"))
    # The way past it, as the message says: the rest of the folder.
    result = CliRunner().invoke(cli, ["pull", "-q", "drive:VOC_datasets", str(tmp_path / "d"),
                                      "--exclude", "VOC07.zip"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "d" / "VOC_datasets" / "README.txt").read_bytes() == b"README.txt" * 100
    assert not list((tmp_path / "d").rglob("VOC07.zip*"))


@renders("has turned off downloading for viewers and commenters")
def test_downloads_turned_off_after_the_pull_looked(emulator, env, store, tmp_path):
    # The metadata said the file could be downloaded; Drive refuses its bytes (403
    # cannotDownloadFile): the owner changed the setting in between, or a server that
    # reports no capabilities.
    ids = _classroom(emulator, restricted="README.txt")
    entry = store.resolve("VOC_datasets/VOC07.zip")
    emulator.restrict_download(ids["VOC07.zip"])
    with pytest.raises(PermissionDeniedError) as err:
        download(store, entry, str(tmp_path / "VOC07.zip"))
    line = error_text(err.value)
    shown("has turned off downloading for viewers and commenters", line)
    assert "(HTTP 403 cannotDownloadFile: This file cannot be downloaded by the user.)" in line
    assert not (tmp_path / "VOC07.zip").exists()


@renders("has turned off downloading for viewers and commenters")
def test_downloads_turned_off_with_half_of_the_file_already_here(emulator, env, tmp_path):
    # A pull that stopped half-way (here: Drive's download quota), then the owner turned
    # downloading off: the partial stays for when it is allowed again, and the message says
    # where it is and how big, so that a user short of disk can free it.
    _classroom(emulator, restricted="README.txt")
    big = os.urandom(1024 * 1024)
    emulator.add_file("VOC_datasets/big.bin", big, owner=TEACHER)
    big_id = emulator.find("VOC_datasets/big.bin", owner=TEACHER)["id"]
    emulator.limit_downloads(big_id, 1)
    dest = tmp_path / "d"
    line = error("pull", "-q", "-j", "1", "--chunk-size", "256KiB",
                 "drive:VOC_datasets/big.bin", str(dest))
    assert "download quota" in line, line
    partials = list(dest.glob(".big.bin.*.partial"))
    assert len(partials) == 1
    emulator.restrict_download(big_id)
    line = error("pull", "-q", "drive:VOC_datasets/big.bin", str(dest))
    shown("has turned off downloading for viewers and commenters", line)
    assert line.endswith(f" A partial download of it (256.0 KiB) stays in {dest} for when it "
                         f"may be downloaded again; delete {partials[0]} to free the space."), line
    assert list(dest.glob(".big.bin.*.partial")) == partials


def test_a_new_version_of_a_staged_file_whose_download_was_turned_off(emulator, env, tmp_path):
    # The rerun finds the file by the id its stamp keeps; the message still names the path
    # the user gave, not drive:id:<ID>.
    ids = _classroom(emulator, restricted="README.txt")
    dest = tmp_path / "d"
    assert CliRunner().invoke(cli, ["pull", "-q", "drive:VOC_datasets/VOC07.zip",
                                    str(dest)]).exit_code == 0
    from drivestage.emulator.revisions import replace_content
    blob = tmp_path / "blob"
    blob.write_bytes(b"v2" * 500)
    replace_content(emulator.store, ids["VOC07.zip"], str(blob), 1000,
                    hashlib.md5(b"v2" * 500).hexdigest())
    emulator.restrict_download(ids["VOC07.zip"])
    line = error("pull", "-q", "drive:VOC_datasets/VOC07.zip", str(dest))
    assert line.startswith("Error: drive:VOC_datasets/VOC07.zip: its owner has turned off "
                           "downloading"), line
    assert (dest / "VOC07.zip").read_bytes() == b"VOC07.zip" * 100   # the old copy stays


def test_ls_says_which_files_cannot_be_downloaded_and_which_folders_are_read_only(
        emulator, env):
    _classroom(emulator)
    result = CliRunner().invoke(cli, ["ls", "drive:VOC_datasets"])
    assert result.exit_code == 0, result.stderr
    rows = result.stdout.splitlines()
    assert [r.endswith("VOC07.zip  (its owner turned off downloading for viewers)")
            for r in rows] == [False, True], rows
    result = CliRunner().invoke(cli, ["ls", "drive:"])
    assert any(r.endswith("VOC_datasets/  (shared with you read-only)")
               for r in result.stdout.splitlines()), result.stdout
    result = CliRunner().invoke(cli, ["ls", "--json", "drive:VOC_datasets"])
    listed = {e["name"]: e for e in json.loads(result.stdout)}
    assert (listed["VOC07.zip"]["downloadable"], listed["README.txt"]["downloadable"]) == \
        (False, True)
    assert json.loads(CliRunner().invoke(cli, ["ls", "--json", "drive:"]).stdout)[0][
        "read_only"] is True
    # Nothing to download either: a Google Doc, a shortcut whose target is gone.
    emulator.add_file("Notes/doc", b"", mime_type="application/vnd.google-apps.document")
    gone = emulator.add_file("x/old.zip", b"old", owner=TEACHER, shared_with_me=True)
    emulator.add_shortcut("Notes/old.zip", gone)
    emulator.unshare(gone)
    listed = {e["name"]: e for e in json.loads(
        CliRunner().invoke(cli, ["ls", "--json", "drive:Notes"]).stdout)}
    assert (listed["doc"]["downloadable"], listed["old.zip"]["downloadable"]) == (False, False)


# --------------------------------------------------------------------------- read-only folders

_WRITES = ("files.insert", "files.update", "files.patch", "media.upload", "files.delete",
           "files.trash")


def _read_only_runs(emulator) -> str:
    """A teacher's "Runs" folder shared with the student as a viewer, a shortcut to it in My
    Drive, and one checkpoint in it."""
    folder = emulator.add_folder("Runs", owner=TEACHER, shared_with_me="reader")
    emulator.add_shortcut("Runs", folder)
    emulator.add_file("Runs/epoch_001.pt", b"t" * 100, owner=TEACHER)
    return folder


@renders("is shared with you read-only")
@pytest.mark.parametrize("dest", ["drive:Runs", "drive:Runs/mine/logs",
                                  "drive:shared-with-me/Runs"])
@pytest.mark.parametrize("command", [("push",), ("mirror", "--every", "60")])
def test_a_push_into_a_folder_shared_read_only(emulator, env, tmp_path, dest, command):
    _read_only_runs(emulator)
    src = _src(tmp_path, **{"epoch_001.pt": b"s" * 10, "epoch_002.pt": b"s" * 20})
    before = {f["id"]: f["md5Checksum"] for f in emulator.files() if "md5Checksum" in f}
    emulator.clear_requests()
    # mirror: at its start, not a failure logged every period for good.
    line = error(*command, src, dest)
    shown("is shared with you read-only", line)
    assert line.startswith("Error: drive:") and "Runs is shared with you read-only " \
        "(Drive: canAddChildren false): nothing can be written into it" in line, line
    assert "Ask the owner to make you an editor, or push into a folder of your own" in line
    # Known from the folder's metadata: not one write was tried, nothing changed on Drive.
    assert [r.kind for r in emulator.requests if r.kind in _WRITES] == []
    assert {f["id"]: f["md5Checksum"] for f in emulator.files() if "md5Checksum" in f} == before


def test_a_push_by_a_store_that_knew_the_folder_already(emulator, env, store, tmp_path):
    # The trainer's store lists drive.logs before its first push: the folder's id is then
    # known, and the push must still see that the folder is read-only (not create its
    # subfolders, refused one by one).
    from drivestage.paths import StorePath
    from drivestage.upload_tree import push

    _read_only_runs(emulator)
    store.list(store.resolve("Runs"))
    src = _src(tmp_path, **{"epoch_002.pt": b"s" * 20})
    os.makedirs(os.path.join(src, "tensorboard"))
    (tmp_path / "logs" / "tensorboard" / "events.out").write_bytes(b"e")
    emulator.clear_requests()
    for _ in range(2):
        with pytest.raises(PermissionDeniedError) as err:
            push(src, (store, StorePath.parse("Runs")))
        assert str(err.value).startswith("drive:Runs is shared with you read-only"), err.value
    assert [r.kind for r in emulator.requests if r.kind in _WRITES] == []


# --------------------------------------------------------------------------- shared with me

@renders("nothing can be created directly in Shared with me")
def test_a_push_next_to_the_shared_folders(emulator, env, tmp_path):
    emulator.add_folder("Course", owner=TEACHER, shared_with_me="writer")
    line = error("push", _src(tmp_path, **{"a.pt": b"a"}), "drive:shared-with-me/New", code=2)
    shown("nothing can be created directly in Shared with me", line)
    assert emulator.find("New") is None


# --------------------------------------------------------------------------- links and ids

@renders("is a Google address but not a link to a Drive file or folder")
def test_a_google_address_without_an_item(emulator, env, tmp_path):
    line = error("pull", "-q", "https://drive.google.com/drive/my-drive", str(tmp_path / "d"),
                 code=2)
    shown("is a Google address but not a link to a Drive file or folder", line)
    assert emulator.requests == []


@renders("is not a Drive resource key")
@pytest.mark.parametrize("spec", [
    "drive:id:0BwwA4oUTeiV1TGRPeTVjaWRDY1E:0-ab.cd",
    "https://drive.google.com/file/d/0BwwA4oUTeiV1TGRPeTVjaWRDY1E/view?resourcekey=0-ab.cd",
], ids=["id", "link"])
def test_a_resource_key_with_characters_a_key_never_has(emulator, env, tmp_path, spec):
    line = error("pull", "-q", spec, str(tmp_path / "d"), code=2)
    shown("is not a Drive resource key", line)
    assert "'0-ab.cd'" in line
    assert emulator.requests == []


@renders("characters long; Drive's are at most a few dozen")
def test_an_id_longer_than_any_drive_id(emulator, env, tmp_path):
    line = error("pull", "-q", "drive:id:" + "a" * 300, str(tmp_path / "d"), code=2)
    shown("characters long; Drive's are at most a few dozen", line)
    assert "the id is 300 characters long" in line and "... (309 characters)" in line
    assert emulator.requests == []


# --------------------------------------------------------------------------- shared drives

@renders("could not be deleted permanently: in a shared drive that needs the Manager role")
def test_a_content_manager_prunes_into_the_trash(emulator, env, caplog):
    from drivestage.pruning import prune
    from drivestage.retention import RetentionPolicy

    team = emulator.add_shared_drive("Team", role="fileOrganizer")
    for i in range(1, 4):
        emulator.add_file(f"run/epoch_{i:03d}.pt", bytes([i]) * 10, drive_id=team)
    caplog.set_level(logging.WARNING, logger="drivestage")
    prune("drive:shared/Team/run", RetentionPolicy(keep_last=1))
    warned = [r for r in caplog.records if "deleted permanently" in r.getMessage()]
    assert len(warned) == 1  # once per run, not once per file
    shown("could not be deleted permanently: in a shared drive that needs the Manager role",
          log_text(warned))
    trashed = {f["title"]: f["labels"]["trashed"] for f in emulator.files()
               if f.get("driveId") == team and f["title"].endswith(".pt")}
    assert trashed == {"epoch_001.pt": True, "epoch_002.pt": True, "epoch_003.pt": False}


@renders("--acknowledge-abuse is for files on Google Drive")
def test_acknowledge_abuse_with_a_local_source(env, tmp_path):
    (tmp_path / "local.zip").write_bytes(b"zip")
    line = error("pull", "--acknowledge-abuse", str(tmp_path / "local.zip"),
                 str(tmp_path / "d"), code=2)
    shown("--acknowledge-abuse is for files on Google Drive", line)
    assert not (tmp_path / "d").exists()
