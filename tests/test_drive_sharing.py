"""Drive as users have it: shortcuts, sharing links with resource keys, "Shared with me", and
shared drives where the account is only a Content manager. Each through the real CLI and
stack against the emulator, which models Drive's rules (404 without a resource key, shortcuts
without bytes, roles that may trash but not delete)."""
from __future__ import annotations

import hashlib
import os
import re

import pytest

from _cli import run
from _envs import env_local_retries  # noqa: F401  (the env fixture)

KEYS = "X-Goog-Drive-Resource-Keys"
TEACHER = "teacher@school.edu"


def pull(*args):
    return run("pull", "-q", *args)


def error_line(code, err):
    assert code == 1, err
    lines = [line for line in err.split("\n") if line.strip()]
    assert lines[-1].startswith("Error: ") and err.count("Error:") == 1, err
    assert "Traceback" not in err
    return lines[-1]


def _media(emulator):
    return [r for r in emulator.requests if r.query.get("alt") == "media"]


# --------------------------------------------------------------------------- shortcuts

def test_a_path_through_a_folder_shortcut(emulator, env, tmp_path):
    """The classroom case: a teacher's folder, added to the student's Drive as a shortcut."""
    data = os.urandom(3000)
    folder = emulator.add_folder("VOC_datasets", owner=TEACHER, shared_with_me=True)
    emulator.add_file("VOC_datasets/VOC07.zip", data, owner=TEACHER)
    emulator.add_shortcut("VOC_datasets", folder)
    code, out, err = pull("drive:VOC_datasets/VOC07.zip", str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d" / "VOC07.zip").read_bytes() == data
    code, out, err = run("ls", "drive:VOC_datasets")
    assert code == 0 and out.split()[-1] == "VOC07.zip"


def test_a_file_shortcut_pulls_its_target_under_its_own_name_verified(emulator, env, tmp_path):
    data = os.urandom(5000)
    target = emulator.add_file("archive/yolov4_tiny_weights_coco.pth", data)
    emulator.add_shortcut("Models/weights.pth", target)
    dest = tmp_path / "d"
    code, out, err = pull("drive:Models/weights.pth", str(dest))
    assert code == 0, err
    assert (dest / "weights.pth").read_bytes() == data
    assert {r.path.rsplit("/", 1)[-1] for r in _media(emulator)} == {target}
    # Verified against the target's md5: served bytes that differ are refused.
    emulator.faults.corrupt(target)
    code, _, err = pull("drive:Models/weights.pth", str(tmp_path / "e"))
    assert "the downloaded bytes do not match Drive" in error_line(code, err)
    assert not (tmp_path / "e" / "weights.pth").exists()
    # A rerun on the intact copy is a no-op, by the stamp (one files.get per hop).
    emulator.clear_requests()
    code, out, err = run("pull", "drive:Models/weights.pth", str(dest))
    assert code == 0 and "already staged" in err and _media(emulator) == []


def test_a_folder_pull_includes_shortcut_targets(emulator, env, tmp_path):
    emulator.add_file("course/readme.txt", b"read me")
    shared = emulator.add_folder("Data", owner=TEACHER, shared_with_me=True)
    emulator.add_file("Data/train.zip", b"train", owner=TEACHER)
    emulator.add_shortcut("course/data", shared)
    weights = emulator.add_file("w/best.pth", b"weights")
    emulator.add_shortcut("course/init.pth", weights)
    code, out, err = pull("drive:course", str(tmp_path / "d"))
    assert code == 0, err
    root = tmp_path / "d" / "course"
    got = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
           if p.is_file() and ".drivestage" not in p.parts}
    assert got == {"readme.txt": b"read me", "data/train.zip": b"train",
                   "init.pth": b"weights"}


def test_a_dangling_shortcut_is_one_error_naming_it(emulator, env, tmp_path):
    gone = emulator.add_file("x/old.zip", b"old", owner=TEACHER, shared_with_me=True)
    emulator.add_shortcut("course/old.zip", gone)
    emulator.add_file("course/ok.txt", b"ok")
    emulator.unshare(gone)
    expected = ("Error: drive:course/old.zip is a shortcut to an item that is gone or no "
                f"longer shared with you (target id {gone}). Remove the shortcut on Drive, or "
                "ask the owner to share the item with you again.")
    code, _, err = pull("drive:course/old.zip", str(tmp_path / "d"))
    assert error_line(code, err) == expected
    code, _, err = pull("drive:course", str(tmp_path / "d"))
    assert error_line(code, err) == expected
    code, _, err = pull("drive:course", str(tmp_path / "d"), "--exclude", "old.zip")
    assert code == 0 and (tmp_path / "d/course/ok.txt").read_bytes() == b"ok"
    code, out, err = run("ls", "drive:course")  # ls shows it for what it is
    assert code == 0
    assert out.splitlines()[1].endswith(
        "old.zip  (a shortcut to an item that is gone or no longer shared with you)")
    # A push into the folder is not blocked by it.
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.pt").write_bytes(b"a")
    code, _, err = run("push", str(logs), "drive:course")
    assert code == 0, err


def test_a_shortcut_cycle_is_detected_and_can_be_left_out(emulator, env, tmp_path):
    top = emulator.add_folder("A")
    emulator.add_file("A/a.txt", b"a")
    emulator.add_shortcut("A/B/loop", top)
    code, _, err = pull("drive:A", str(tmp_path / "d"))
    line = error_line(code, err)
    assert line == ("Error: drive:A/B/loop is a shortcut to drive:A, a folder it sits in: a "
                    "walk through it would never end. Leave it out (pull --exclude 'loop') or "
                    "remove the shortcut on Drive.")
    code, _, err = pull("drive:A", str(tmp_path / "d"), "--exclude", "loop")
    assert code == 0 and (tmp_path / "d/A/a.txt").read_bytes() == b"a"
    code, out, err = run("ls", "drive:A/B/loop")  # one level is no walk: it lists A
    assert code == 0 and out.split() [-1] == "a.txt" and "B/" in out


def test_non_binary_google_files_are_refused_by_their_type(emulator, env, tmp_path):
    emulator.add_file("notes", b"", mime_type="application/vnd.google-apps.spreadsheet")
    code, _, err = pull("drive:notes", str(tmp_path / "d"))
    assert code == 2
    assert "its type is application/vnd.google-apps.spreadsheet" in err


def test_deleting_a_shortcut_never_touches_its_target(emulator, env, tmp_path):
    target = emulator.add_file("keep/data.bin", b"precious")
    emulator.add_shortcut("run/link.bin", target)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.pt").write_bytes(b"a")
    code, _, err = run("push", str(logs), "drive:run", "--delete", "--use-trash")
    assert code == 0, err
    assert emulator.find("run/link.bin") is None
    assert emulator.read_bytes(target) == b"precious"
    assert not emulator.find("keep/data.bin")["labels"]["trashed"]


def test_push_refuses_to_write_through_a_file_shortcut(emulator, env, tmp_path):
    target = emulator.add_file("keep/best.pt", b"theirs")
    emulator.add_shortcut("run/best.pt", target)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "best.pt").write_bytes(b"mine!")
    code, _, err = run("push", str(logs), "drive:run")
    assert "drive:run/best.pt is a shortcut; drivestage does not replace a shortcut's " \
           "target" in error_line(code, err)
    assert emulator.read_bytes(target) == b"theirs"



def test_a_file_shortcut_with_the_local_files_content_does_not_stop_the_push(emulator, env,
                                                                            tmp_path):
    """Nothing needs replacing when the shortcut's target already holds the local bytes: the
    rest of the run folder must still reach Drive (a mirror refusing every cycle would keep
    every new checkpoint off Drive)."""
    target = emulator.add_file("keep/data.bin", b"same bytes")
    emulator.add_shortcut("run/data.bin", target)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "data.bin").write_bytes(b"same bytes")
    (logs / "epoch_001.pt").write_bytes(b"new")
    code, _, err = run("push", str(logs), "drive:run")
    assert code == 0, err
    assert emulator.find("run/epoch_001.pt") is not None
    assert emulator.read_bytes(target) == b"same bytes"

# --------------------------------------------------------------------------- resource keys

def test_a_sharing_link_with_a_resource_key(emulator, env, tmp_path):
    data = os.urandom(2000)
    file_id = emulator.add_file("old/VOC07.zip", data, owner=TEACHER, resource_key="0-abcKEY")
    link = f"https://drive.google.com/file/d/{file_id}/view?usp=sharing&resourcekey=0-abcKEY"
    code, out, err = pull(link, str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d" / "VOC07.zip").read_bytes() == data
    sent = {(r.kind, r.headers.get(KEYS)) for r in emulator.requests}
    assert sent == {("files.get", f"{file_id}/0-abcKEY"), ("media.download", f"{file_id}/0-abcKEY")}
    # The same by id with the key; without it Drive answers 404.
    code, _, err = pull(f"drive:id:{file_id}:0-abcKEY", str(tmp_path / "e"))
    assert code == 0, err
    code, _, err = pull(f"https://drive.google.com/open?id={file_id}", str(tmp_path / "f"))
    line = error_line(code, err)
    assert "not found on Drive (HTTP 404" in line
    assert line.endswith("; if it was shared with you by a link, give the whole link (with its "
                         "resourcekey=...) as SRC or DEST")


def test_a_folder_link_with_a_resource_key_pulls_the_tree(emulator, env, tmp_path):
    folder = emulator.add_folder("Course", owner=TEACHER, resource_key="0-folderKEY")
    emulator.add_file("Course/sub/a.zip", b"aaa", owner=TEACHER)
    emulator.add_file("Course/b.txt", b"bb", owner=TEACHER)
    link = f"https://drive.google.com/drive/folders/{folder}?resourcekey=0-folderKEY&usp=sharing"
    code, out, err = pull(link, str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d/Course/sub/a.zip").read_bytes() == b"aaa"
    assert (tmp_path / "d/Course/b.txt").read_bytes() == b"bb"
    assert all(r.headers.get(KEYS, "").startswith(f"{folder}/0-folderKEY") or
               f"{folder}/0-folderKEY" in r.headers.get(KEYS, "") for r in emulator.requests)


def test_a_shortcut_carries_its_targets_resource_key(emulator, env, tmp_path):
    folder = emulator.add_folder("VOC", owner=TEACHER, resource_key="0-shortcutKEY")
    emulator.add_file("VOC/x.zip", b"xx", owner=TEACHER)
    emulator.add_shortcut("VOC", folder)
    code, _, err = pull("drive:VOC/x.zip", str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d/x.zip").read_bytes() == b"xx"
    assert any(r.headers.get(KEYS) == f"{folder}/0-shortcutKEY" for r in _media(emulator))


def test_no_resource_key_header_when_none_is_known(emulator, env, tmp_path):
    emulator.add_file("a/b.bin", b"b")
    assert pull("drive:a/b.bin", str(tmp_path / "d"))[0] == 0
    assert all(KEYS not in r.headers for r in emulator.requests)


# --------------------------------------------------------------------------- shared with me

def test_shared_with_me(emulator, env, tmp_path):
    emulator.add_folder("Course", owner=TEACHER, shared_with_me=True)
    emulator.add_file("Course/VOC.zip", b"voc", owner=TEACHER)
    code, out, err = run("ls", "drive:shared-with-me")
    # Shared as a reader (the default): ls says so since it marks read-only folders.
    assert code == 0 and out.rstrip().endswith("Course/  (shared with you read-only)"), out
    code, _, err = pull("drive:shared-with-me/Course/VOC.zip", str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d/VOC.zip").read_bytes() == b"voc"
    code, _, err = pull("drive:shared-with-me/Course", str(tmp_path / "e"))
    assert code == 0 and (tmp_path / "e/Course/VOC.zip").read_bytes() == b"voc"
    # Two items of that name shared with you: reported as any duplicate.
    other = emulator.add_folder("Course", owner="other@school.edu", shared_with_me=True)
    code, _, err = pull("drive:shared-with-me/Course/VOC.zip", str(tmp_path / "f"))
    line = error_line(code, err)
    assert "drive:shared-with-me/Course matches 2 items with that exact name (ids" in line
    assert other in line
    code, _, err = run("push", str(tmp_path / "d"), "drive:shared-with-me/New")
    assert "nothing can be created directly in Shared with me" in err


# --------------------------------------------------------------------------- shared drives

def test_a_content_manager_prunes_into_the_trash_with_one_warning(emulator, env, tmp_path):
    team = emulator.add_shared_drive("Team", role="fileOrganizer")
    for i in range(1, 4):
        emulator.add_file(f"run/epoch_{i:03d}.pt", bytes([i]) * 10, drive_id=team)
    code, out, err = run("prune", "drive:shared/Team/run", "--keep-last", "1")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "Manager role (organizer)" in line]
    assert len(warnings) == 1, err
    assert "Moved to the shared drive's trash instead" in warnings[0]
    files = {f["title"]: f["labels"]["trashed"] for f in emulator.files()
             if f.get("driveId") == team and f["title"].endswith(".pt")}
    assert files == {"epoch_001.pt": True, "epoch_002.pt": True, "epoch_003.pt": False}


def test_a_push_into_a_shared_drive_skips_my_drives_quota(emulator_factory, tmp_path,
                                                          local_state, monkeypatch):
    emu = emulator_factory(quota_bytes=1000)
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emu.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    team = emu.add_shared_drive("Team")
    logs = tmp_path / "logs"
    logs.mkdir()
    data = os.urandom(5000)  # more than My Drive's 1000 bytes
    (logs / "epoch_001.pt").write_bytes(data)
    code, _, err = run("push", str(logs), "drive:shared/Team/run", "--max-bytes", "1MB")
    assert code == 0, err
    f = emu.find("run/epoch_001.pt", drive_id=team)
    assert f["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert emu.api_calls("about.get") == 0


def test_a_refused_delete_outside_shared_drives_stays_an_error(emulator, store, caplog):
    """Only a shared drive's role makes the trash a fallback: a file someone else owns, in a
    folder shared with you as writer, can be neither deleted nor trashed by you."""
    emulator.add_folder("Course", owner=TEACHER, shared_with_me="writer")
    emulator.add_file("Course/theirs.pt", b"t", owner=TEACHER)
    from drivestage.drive.places import shared_with_me
    from drivestage.errors import PermissionDeniedError

    mine = shared_with_me(store)
    entry = mine.resolve("Course/theirs.pt")
    with pytest.raises(PermissionDeniedError) as info:
        mine.delete(entry)
    assert str(info.value).startswith("delete drive:shared-with-me/Course/theirs.pt: "
                                      "permission denied (HTTP 403 insufficientFilePermissions")
    assert "Manager role" not in caplog.text
    assert not emulator.find("Course/theirs.pt", owner=TEACHER)["labels"]["trashed"]


def test_push_through_a_folder_shortcut_lands_in_its_target(emulator, env, tmp_path):
    team_folder = emulator.add_folder("Runs", owner=TEACHER, shared_with_me="writer")
    emulator.add_shortcut("Runs", team_folder)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "epoch_001.pt").write_bytes(b"e1")
    code, _, err = run("push", str(logs), "drive:Runs/me")
    assert code == 0, err
    pushed = emulator.find("Runs/me/epoch_001.pt", owner=TEACHER)
    assert pushed is not None and emulator.read_bytes(pushed["id"]) == b"e1"
    code, _, err = run("push", str(logs), "drive:Runs/me")  # the second run finds it there
    assert code == 0 and len([f for f in emulator.files() if f["title"] == "epoch_001.pt"]) == 1


def test_a_folder_and_a_shortcut_of_one_name_are_named_as_such(emulator, env, tmp_path):
    """A folder and a folder shortcut of one name inside DEST: push takes the oldest (every
    machine agrees) and its warning says what the two are (not 'two pushes from different
    machines')."""
    own = emulator.add_folder("Runs/sub")
    team_folder = emulator.add_folder("Team", owner=TEACHER, shared_with_me="writer")
    emulator.add_shortcut("Runs/sub", team_folder)
    logs = tmp_path / "logs"
    (logs / "sub").mkdir(parents=True)
    (logs / "sub" / "epoch_001.pt").write_bytes(b"e1")
    code, _, err = run("push", str(logs), "drive:Runs")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "folders have this name" in line]
    assert len(warnings) == 1 and "a folder and a shortcut to one" in warnings[0] and \
        "different machines" not in warnings[0], warnings
    # The oldest (in the same second, the lower id): the folder, or the shortcut's target.
    chosen = re.search(r"pushing into (\S+), the oldest", warnings[0]).group(1)
    assert chosen in (own, team_folder)
    pushed = [f for f in emulator.files() if f["title"] == "epoch_001.pt"]
    assert [p["id"] for f in pushed for p in f["parents"]] == [chosen]


def test_a_chain_of_shortcuts_is_followed_to_the_file(emulator, env, tmp_path):
    """Drive makes no shortcut to a shortcut; a server that does is followed a few hops."""
    target = emulator.add_file("x/data.bin", b"data")
    first = emulator.add_shortcut("x/one", target)
    emulator.add_shortcut("two", first)
    code, _, err = pull("drive:two", str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d/two").read_bytes() == b"data"
