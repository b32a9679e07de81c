"""`drivestage pull drive:FOLDER DEST` attacked as a hostile user, server and second process
would: links inside DEST, Drive changing under the pull, hostile names, two pulls at once,
SIGKILL at a real moment and the rerun. Real CLI (in-process or a child process) against the
emulator over HTTP; events (the emulator's holds), never sleeps."""
from __future__ import annotations

import hashlib
import io
import json
import os
import unicodedata

import pytest

from _archives import tree
from _cli import child_env, run
from _drive_clients import drive_service
from _forkcli import PIPE, Child, cli_server


@pytest.fixture(autouse=True)
def _fast(fast_retries, local_state, monkeypatch):
    """Backoffs of a millisecond, and no debug tracebacks, for every test here."""
    monkeypatch.delenv("DRIVESTAGE_DEBUG", raising=False)


def error_line(code: int, err: str, expected_code: int = 1) -> str:
    """The one ``Error:`` line of a failed command (no traceback)."""
    assert code == expected_code, err
    lines = [line for line in err.split("\n") if line.strip()]
    assert "Traceback" not in err, err
    assert lines[-1].startswith("Error: "), err
    assert sum(line.startswith("Error:") for line in lines) == 1, err
    return lines[-1]


def leftovers(folder) -> list[str]:
    """Partial downloads, their records and temporary files anywhere under ``folder``."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + dirnames:
            if name.endswith((".partial", ".ranges", ".tmp")) or name.startswith(
                    ".drivestage-"):
                out.append(os.path.relpath(os.path.join(dirpath, name), folder))
    return sorted(out)


def replace_in_place(emulator, file_id: str, data: bytes) -> None:
    """New content for a file, keeping its id (a new revision), as another client would."""
    from googleapiclient.http import MediaIoBaseUpload

    media = MediaIoBaseUpload(io.BytesIO(data), mimetype="application/octet-stream",
                              resumable=False)
    drive_service(emulator.url).files().update(fileId=file_id, media_body=media).execute()


def pull_child(emulator, *args: str) -> Child:
    """``python -m drivestage pull ARGS``, forked with drivestage imported (tests/_forkcli.py:
    a fresh interpreter's start was most of a test here)."""
    return cli_server().popen(["pull", *args], env=child_env(emulator), stdout=PIPE,
                              stderr=PIPE, text=True)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --------------------------------------------------------------------------- links in DEST

def test_a_subfolder_that_is_a_link_out_of_dest_gets_nothing_written_through_it(
        emulator, drive_env, tmp_path):
    emulator.add_file("F/a.txt", b"a")
    emulator.add_file("F/sub/b.txt", b"b")
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    outside.mkdir()
    (dest / "F").mkdir(parents=True)
    os.symlink(outside, dest / "F" / "sub")
    code, out, err = run("pull", "drive:F", str(dest), "-q")
    line = error_line(code, err)
    assert str(dest / "F" / "sub") in line and "link" in line
    assert os.listdir(outside) == []


def test_a_subfolder_swapped_for_a_link_during_the_pull_gets_nothing_written_through_it(
        emulator, drive_env, tmp_path):
    a = emulator.add_file("F/a.bin", os.urandom(4096))
    emulator.add_file("F/sub/b.txt", b"b")
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    outside.mkdir()
    hold = emulator.faults.hold(a, 1000)
    proc = pull_child(emulator, "drive:F", str(dest), "-q", "-j", "1")
    try:
        assert hold.reached.wait(30), "a.bin never started"
        os.symlink(outside, dest / "F" / "sub")   # F/sub is not there yet: files go first
    finally:
        hold.release()
    out, err = proc.communicate(timeout=60)
    line = error_line(proc.returncode, err)
    assert str(dest / "F" / "sub") in line
    assert os.listdir(outside) == []
    assert (dest / "F" / "a.bin").read_bytes() == emulator.read_bytes(a)


def test_dest_itself_a_link_is_the_users_choice_and_followed(emulator, drive_env, tmp_path):
    emulator.add_file("F/sub/b.txt", b"b")
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "dest")
    code, out, err = run("pull", "drive:F", str(tmp_path / "dest"), "-q")
    assert code == 0, err
    assert tree(real / "F") == {os.path.join("sub", "b.txt"): b"b"}


# --------------------------------------------------------------------------- Drive changing

def test_a_file_replaced_on_drive_after_the_listing_is_never_staged_unverified(
        emulator, drive_env, tmp_path):
    a = emulator.add_file("F/a.bin", os.urandom(4096))
    b = emulator.add_file("F/b.bin", b"old bytes" * 100)
    dest = tmp_path / "dest"
    hold = emulator.faults.hold(a, 1000)
    proc = pull_child(emulator, "drive:F", str(dest), "-q", "-j", "1")
    try:
        assert hold.reached.wait(30)
        replace_in_place(emulator, b, b"new bytes, longer" * 100)
    finally:
        hold.release()
    out, err = proc.communicate(timeout=60)
    line = error_line(proc.returncode, err)
    print(line)
    assert "b.bin" in line
    assert not (dest / "F" / "b.bin").exists()
    code, out, err = run("pull", "drive:F", str(dest), "--json")
    assert code == 0, err
    assert tree(dest / "F") == {"a.bin": emulator.read_bytes(a),
                                "b.bin": b"new bytes, longer" * 100}
    assert leftovers(dest) == []


@pytest.mark.parametrize("how", ["trash", "delete"])
def test_a_file_removed_on_drive_after_the_listing(emulator, drive_env, tmp_path, how):
    """Trashed: Drive still serves it by id, so the listed (verified) bytes land, and the
    pull's second look at the folder, which no longer lists it, fails the pull naming it
    (fuse51: it ended exit 0, nothing said). Deleted: one line naming it. The rerun, which no
    longer lists it, completes."""
    a = emulator.add_file("F/a.bin", os.urandom(4096))
    b = emulator.add_file("F/b.bin", b"b" * 100)
    dest = tmp_path / "dest"
    hold = emulator.faults.hold(a, 1000)
    proc = pull_child(emulator, "drive:F", str(dest), "-q", "-j", "1")
    try:
        assert hold.reached.wait(30)
        files = drive_service(emulator.url).files()
        (files.trash if how == "trash" else files.delete)(fileId=b).execute()
    finally:
        hold.release()
    out, err = proc.communicate(timeout=60)
    staged = {"a.bin": emulator.read_bytes(a)}
    line = error_line(proc.returncode, err)
    assert "drive:F/b.bin went away on Drive while this pull ran" in line
    if how == "trash":
        assert "after it was staged" in line
        staged["b.bin"] = b"b" * 100
    else:
        assert not (dest / "F" / "b.bin").exists()
    code, out, err = run("pull", "drive:F", str(dest), "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"cached": 1}
    assert tree(dest / "F") == staged      # pull never deletes: a trashed file's copy stays
    assert leftovers(dest) == []


def test_a_subfolder_that_became_a_file_on_drive(emulator, drive_env, tmp_path):
    emulator.add_file("F/sub/b.txt", b"b")
    dest = tmp_path / "dest"
    assert run("pull", "drive:F", str(dest), "-q")[0] == 0
    service = drive_service(emulator.url)
    service.files().trash(fileId=emulator.find("F/sub")["id"]).execute()
    emulator.add_file("F/sub", b"now a file")
    code, out, err = run("pull", "drive:F", str(dest), "-q")
    line = error_line(code, err, code)
    assert code in (1, 2) and str(dest / "F" / "sub") in line
    assert tree(dest / "F") == {os.path.join("sub", "b.txt"): b"b"}


def test_a_file_that_became_a_subfolder_on_drive(emulator, drive_env, tmp_path):
    x = emulator.add_file("F/x", b"a file")
    dest = tmp_path / "dest"
    assert run("pull", "drive:F", str(dest), "-q")[0] == 0
    drive_service(emulator.url).files().trash(fileId=x).execute()
    emulator.add_file("F/x/y.txt", b"y")
    code, out, err = run("pull", "drive:F", str(dest), "-q")
    line = error_line(code, err)
    assert str(dest / "F" / "x") in line and "move the file away" in line


# --------------------------------------------------------------------------- hostile names

def test_a_name_longer_than_the_file_system_allows_fails_before_any_download(
        emulator, drive_env, tmp_path):
    emulator.add_file("F/a.txt", b"a")
    emulator.add_file("F/" + "n" * 300, b"long" * 1000)
    dest = tmp_path / "dest"
    emulator.clear_requests()
    code, out, err = run("pull", "drive:F", str(dest), "-q")
    line = error_line(code, err, 2)
    assert "drive:F: the remote name " + "n" * 60 + "... is 300 bytes long" in line
    assert "--exclude" in line
    assert not [r for r in emulator.requests if r.query.get("alt") == "media"]
    assert tree(dest) == {}
    code, out, err = run("pull", "drive:F", str(dest), "-q", "--exclude", "n" * 300)
    assert code == 0, err
    assert tree(dest / "F") == {"a.txt": b"a"}


def test_names_differing_only_in_case_space_or_normalization_each_land(emulator, drive_env,
                                                                       tmp_path):
    names = ["A.jpg", "a.jpg", "x", "x ", unicodedata.normalize("NFC", "é.txt"),
             unicodedata.normalize("NFD", "é.txt")]
    for i, name in enumerate(names):
        emulator.add_file(f"F/{name}", f"{i}".encode() * (i + 1))
    dest = tmp_path / "dest"
    code, out, err = run("pull", "drive:F", str(dest), "--json")
    assert code == 0, err
    assert tree(dest / "F") == {n: f"{i}".encode() * (i + 1) for i, n in enumerate(names)}
    code, out, err = run("pull", "drive:F", str(dest), "--json")
    assert json.loads(out)["actions"] == {"cached": len(names)}


def test_a_slash_in_a_title_that_meets_a_sibling_is_refused_naming_both(emulator, drive_env,
                                                                        tmp_path):
    one = emulator.add_file("F/a.txt", b"1")
    folder = emulator.find("F")["id"]
    service = drive_service(emulator.url)
    two = service.files().insert(body={"title": "a/txt".replace("/", "/"),
                                       "parents": [{"id": folder}]}).execute()["id"]
    three = service.files().insert(body={"title": "a_txt",
                                         "parents": [{"id": folder}]}).execute()["id"]
    code, out, err = run("pull", "drive:F", str(tmp_path / "dest"), "-q")
    line = error_line(code, err)
    assert two in line and three in line and one not in line


@pytest.mark.parametrize("name", ["..", "."])
def test_a_dot_title_in_a_folder_is_refused_before_anything_lands(
        emulator, drive_env, tmp_path, name):
    emulator.add_file("F/a.txt", b"a")
    folder = emulator.find("F")["id"]
    drive_service(emulator.url).files().insert(
        body={"title": name, "parents": [{"id": folder}]}).execute()
    dest = tmp_path / "dest"
    code, out, err = run("pull", "drive:F", str(dest), "-q")
    # Exit 1, not 2 (a usage error): Drive's title, not what the user typed (lefts43).
    assert "on Drive has the title" in error_line(code, err, 1)
    assert tree(dest) == {}


@pytest.mark.parametrize("name", [".drivestage", ".DriveStage-x"])
def test_a_reserved_title_in_a_folder_is_left_out(emulator, drive_env, tmp_path, name):
    """drivestage's own state, which a Drive mount synced from a DEST in it (attackpull35):
    never data, never staged; the rest of the folder is pulled."""
    emulator.add_file("F/a.txt", b"a")
    folder = emulator.find("F")["id"]
    drive_service(emulator.url).files().insert(
        body={"title": name, "parents": [{"id": folder}]}).execute()
    dest = tmp_path / "dest"
    code, out, err = run("pull", "drive:F", str(dest), "-q")
    assert code == 0, err
    assert {k: v for k, v in tree(dest).items() if ".drivestage" not in k} == \
        {os.path.join("F", "a.txt"): b"a"}
    assert not os.path.isfile(dest / "F" / name)


# --------------------------------------------------------------------------- kills and reruns

def test_a_partial_of_a_file_deleted_on_drive_after_a_kill_is_removed_by_the_rerun(
        emulator, drive_env, tmp_path):
    """SIGKILL mid-file, then the file deleted on Drive: the rerun no longer lists it, and
    still leaves no partial download of it behind (else it stays, hidden, for ever)."""
    from _kill import sigkill_when

    emulator.add_file("F/a.txt", b"a")
    big = emulator.add_file("F/sub/big.bin", os.urandom(300_000))
    dest = tmp_path / "dest"
    hold = emulator.faults.hold(big, 100_000)
    proc = pull_child(emulator, "drive:F", str(dest), "-q", "-j", "1")
    try:
        sigkill_when(proc, hold.reached.is_set, "big.bin never started")
    finally:
        hold.release()
    assert [p for p in leftovers(dest) if p.endswith(".partial")]
    drive_service(emulator.url).files().delete(fileId=big).execute()
    code, out, err = run("pull", "drive:F", str(dest), "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"cached": 1}
    assert tree(dest / "F") == {"a.txt": b"a"} and leftovers(dest) == []


def test_two_folders_of_one_name_pulled_into_one_dest_at_once(emulator, drive_env, tmp_path):
    """drive:A/data and drive:B/data into one DEST, a name in common: the per-name lock keeps
    them apart, B's clean-up of partials it does not list leaves A's live one alone, both
    end 0 with verified bytes, and each rerun puts its own copy back."""
    x = emulator.add_file("A/data/x.bin", os.urandom(200_000))
    emulator.add_file("A/data/common.txt", b"from A")
    emulator.add_file("B/data/common.txt", b"from B, longer")
    dest = tmp_path / "dest"
    hold = emulator.faults.hold(x, 50_000)
    proc = pull_child(emulator, "drive:A/data", str(dest), "-q", "-j", "1")
    try:
        assert hold.reached.wait(30), "x.bin never started"
        code, out, err = run("pull", "drive:B/data", str(dest), "--json")
        assert code == 0, err
        assert [p for p in leftovers(dest) if p.endswith(".partial")]  # A's, live: kept
    finally:
        hold.release()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert tree(dest / "data") == {"x.bin": emulator.read_bytes(x),
                                   "common.txt": b"from B, longer"}
    code, out, err = run("pull", "drive:A/data", str(dest), "--json")
    assert code == 0, err
    actions = {f["name"]: f["action"] for f in json.loads(out)["files"]}
    assert actions == {"x.bin": "cached", "common.txt": "download"}  # B's copy replaced
    assert (dest / "data" / "common.txt").read_bytes() == b"from A"
    assert leftovers(dest) == []


def test_two_pulls_of_one_folder_one_killed_mid_file(emulator, drive_env, tmp_path):
    """Two processes pull one folder into one DEST; one is SIGKILLed while a file streams:
    the other takes that file over (resuming its partial or fetching it again) and ends 0;
    the rerun is a no-op with DEST exactly Drive's files."""
    files = {"a.txt": b"a" * 10, "m.bin": os.urandom(300_000), "sub/z.txt": b"z" * 7}
    ids = {rel: emulator.add_file(f"F/{rel}", data) for rel, data in files.items()}
    dest = tmp_path / "dest"
    hold = emulator.faults.hold(ids["m.bin"], 100_000)
    one = pull_child(emulator, "drive:F", str(dest), "-q", "-j", "1")
    two = pull_child(emulator, "drive:F", str(dest), "-q", "-j", "1")
    from _kill import sigkill_when
    try:
        sigkill_when(one, hold.reached.is_set, "m.bin never started")
    finally:
        hold.release()
    out, err = two.communicate(timeout=60)
    assert two.returncode == 0, err
    assert tree(dest / "F") == {os.path.normpath(k): v for k, v in files.items()}
    code, out, err = run("pull", "drive:F", str(dest), "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"cached": 3}
    assert leftovers(dest) == []
    for f in json.loads(out)["files"]:
        assert md5(open(f["path"], "rb").read()) == f["md5"]


# --------------------------------------------------------------------------- the user's files

def test_a_file_of_the_users_at_a_name_the_pull_writes_is_never_replaced(emulator, drive_env,
                                                                        tmp_path):
    """DEST/F/notes.txt is the user's (no stamp, other bytes): the folder pull stops with one
    line naming it before replacing it; --force replaces it; a file of the user's with
    Drive's very bytes is adopted."""
    emulator.add_file("F/a.txt", b"a")
    emulator.add_file("F/notes.txt", b"drive's notes")
    emulator.add_file("F/same.txt", b"same")
    dest = tmp_path / "dest"
    (dest / "F").mkdir(parents=True)
    (dest / "F" / "notes.txt").write_bytes(b"my own notes, not drive's")
    (dest / "F" / "same.txt").write_bytes(b"same")
    code, out, err = run("pull", "drive:F", str(dest), "-q")
    line = error_line(code, err)
    assert str(dest / "F" / "notes.txt") in line and "--force" in line
    assert (dest / "F" / "notes.txt").read_bytes() == b"my own notes, not drive's"
    code, out, err = run("pull", "drive:F", str(dest), "-q", "--force")
    assert code == 0, err
    assert tree(dest / "F") == {"a.txt": b"a", "notes.txt": b"drive's notes", "same.txt": b"same"}


def test_a_staged_file_edited_here_is_staged_again_from_drive(emulator, drive_env, tmp_path):
    """A copy drivestage staged is Drive's file: edited here, the next pull puts Drive's
    bytes back (verified), as a rerun after any damage does."""
    emulator.add_file("F/notes.txt", b"drive's notes")
    dest = tmp_path / "dest"
    assert run("pull", "drive:F", str(dest), "-q")[0] == 0
    (dest / "F" / "notes.txt").write_bytes(b"edited here!!")   # the same size
    code, out, err = run("pull", "drive:F", str(dest), "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"update": 1}
    assert (dest / "F" / "notes.txt").read_bytes() == b"drive's notes"


def test_the_clean_up_of_partials_never_goes_through_a_link(emulator, drive_env, tmp_path):
    """F/docs holds only a Google Doc (nothing to stage there), and DEST/F/docs is a link out
    of DEST beside a file named like a partial download: the pull's clean-up of partials
    of files Drive no longer has leaves it, and writes nothing there."""
    emulator.add_file("F/a.txt", b"a")
    emulator.add_file("F/docs/notes", b"", mime_type="application/vnd.google-apps.document")
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    outside.mkdir()
    planted = outside / ".old.bin.0123456789abcdef.partial"
    planted.write_bytes(b"not drivestage's")
    (dest / "F").mkdir(parents=True)
    os.symlink(outside, dest / "F" / "docs")
    code, out, err = run("pull", "drive:F", str(dest), "-q")
    assert code == 0, err
    assert sorted(os.listdir(outside)) == [planted.name]
    assert (dest / "F" / "a.txt").read_bytes() == b"a"
