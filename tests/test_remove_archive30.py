"""`pull -x --remove-archive`: the downloaded archive goes once its members are extracted and
verified, so a dataset takes its size on disk once, not twice (a 20 GB `/kaggle/working`,
Colab's disk). The stamp keeps what the archive was; a rerun finds the members in place by
it and downloads nothing, with the flag or without (a notebook's later `pull -x`, the
trainer's `data.drive_zip`); a member gone or changed brings the archive back for that
member only; a new version on Drive replaces the members. Nothing is lost: the archive is
removed only after the stamp says every member is in place, never a file another program
put under its name, never a local original extracted where it lies."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from _archives import a_fixed_zip as a_zip, tree
from _cli import run
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from drivestage import stamps
from drivestage.emulator.revisions import replace_content

DATA = {"ds/a.txt": b"alpha", "ds/b.txt": b"bravo", "ds/sub/c.txt": b"gamma"}


@pytest.fixture
def drive(emulator, local_state, drive_env, fast_retries):
    emulator.add_file("d/set.zip", a_zip(DATA))
    return emulator


def _pull(dest, *more: str) -> dict:
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "--json", *more)
    assert code == 0, err
    return json.loads(out)


def _media(emulator) -> int:
    return emulator.api_calls("media.download")


def _stamp(dest) -> dict:
    [stamp] = stamps.of(str(dest), "set.zip")
    return stamp


def test_the_archive_goes_once_its_members_are_in_place(drive, tmp_path):
    dest = tmp_path / "data"
    code, _, err = run("pull", "drive:d/set.zip", str(dest), "-x", "--remove-archive")

    assert code == 0, err
    assert tree(dest) == DATA                     # the members, no set.zip, no partial
    assert sorted(os.listdir(dest)) == [".drivestage", "ds"]
    assert ": downloaded and verified (" in err and \
        ", 3 members extracted, archive removed, " in err, err
    stamp = _stamp(dest)
    assert stamp["extracted"] is True and stamp["removed"] is True
    assert sorted(m.path for m in stamps.records(stamp)) == ["ds/a.txt", "ds/b.txt",
                                                              "ds/sub/c.txt"]


@pytest.mark.parametrize("again", [["-x", "--remove-archive"], ["-x"]])
def test_a_rerun_downloads_nothing_with_the_flag_or_without(drive, tmp_path, again):
    dest = tmp_path / "data"
    _pull(dest, "-x", "--remove-archive")
    drive.clear_requests()

    out = _pull(dest, *again)

    assert out["action"] == "cached" and out["archive_removed"] is True
    assert dict(drive.api_calls()) == {"files.get": 1}     # one metadata call, no media
    assert tree(dest) == DATA
    code, _, err = run("pull", "drive:d/set.zip", str(dest), *again)
    assert code == 0 and ": already staged (" in err and \
        "3 members already staged, archive removed, " in err, err


def test_a_member_gone_brings_the_archive_back_for_it_alone(drive, tmp_path):
    dest = tmp_path / "data"
    _pull(dest, "-x", "--remove-archive")
    os.unlink(dest / "ds/a.txt")
    kept = os.stat(dest / "ds/b.txt").st_ino
    drive.clear_requests()

    out = _pull(dest, "-x", "--remove-archive")

    assert out["action"] == "download" and out["archive_removed"] is True
    assert out["members_kept"] == out["members"] - 1
    assert _media(drive) >= 1
    assert tree(dest) == DATA
    assert os.stat(dest / "ds/b.txt").st_ino == kept          # not written again
    assert _pull(dest, "-x")["action"] == "cached"


def test_without_the_flag_the_archive_comes_back_and_stays(drive, tmp_path):
    """Only a pull that asks for the archive itself (no -x) or --force fetches it again."""
    dest = tmp_path / "data"
    _pull(dest, "-x", "--remove-archive")

    out = _pull(dest)

    assert out["action"] == "download" and out["archive_removed"] is False
    assert tree(dest) == {"set.zip": a_zip(DATA), **DATA}
    assert _pull(dest, "-x")["action"] == "cached"       # the members are still its own
    forced = _pull(dest, "-x", "--force", "--remove-archive")
    assert forced["action"] == "download" and tree(dest) == DATA


def test_a_new_version_on_drive_replaces_the_members(drive, tmp_path):
    dest = tmp_path / "data"
    _pull(dest, "-x", "--remove-archive")
    new = a_zip({"ds/a.txt": b"ALPHA-2", "ds/d.txt": b"delta"})
    blob = tmp_path / "blob"
    blob.write_bytes(new)
    [rec] = [r for r in drive.store.all_files() if r["title"] == "set.zip"]
    replace_content(drive.store, rec["id"], str(blob), len(new), hashlib.md5(new).hexdigest())

    out = _pull(dest, "-x", "--remove-archive")

    assert out["action"] == "update" and out["archive_removed"] is True
    assert tree(dest) == {"ds/a.txt": b"ALPHA-2", "ds/d.txt": b"delta"}   # old ones gone
    assert _stamp(dest)["md5"] == hashlib.md5(new).hexdigest()


def test_a_bad_download_removes_nothing_and_extracts_nothing(drive, tmp_path):
    """An md5 mismatch (a lying server) leaves the earlier members and stamp as they were."""
    dest = tmp_path / "data"
    _pull(dest, "-x", "--remove-archive")
    before = _stamp(dest)
    os.unlink(dest / "ds/a.txt")
    [rec] = [r for r in drive.store.all_files() if r["title"] == "set.zip"]
    drive.faults.corrupt(rec["id"])               # every answer with a byte flipped

    code, _, err = run("pull", "drive:d/set.zip", str(dest), "-x", "--remove-archive")

    assert code == 1, err
    assert tree(dest) == {k: v for k, v in DATA.items() if k != "ds/a.txt"}
    assert _stamp(dest)["md5"] == before["md5"]


def test_a_file_put_under_the_archive_name_is_not_removed(drive, tmp_path):
    """A stamp says the archive was removed; a file of the user's under that name since is
    theirs: the rerun refuses it as for any unstamped file, and removes nothing."""
    dest = tmp_path / "data"
    _pull(dest, "-x", "--remove-archive")
    (dest / "set.zip").write_bytes(b"mine, not a zip")

    code, _, err = run("pull", "drive:d/set.zip", str(dest), "-x", "--remove-archive")

    assert (dest / "set.zip").read_bytes() == b"mine, not a zip"
    assert tree(dest) == {"set.zip": b"mine, not a zip", **DATA}
    assert code == 1 and "is already there and is not a copy of drive:d/set.zip" in err, err


def test_a_kill_between_the_stamp_and_the_removal(drive, tmp_path):
    """The stamp says "removed" before the file goes: a kill between the two leaves the
    stamped archive, which the next pull with the flag removes (one without keeps it)."""
    dest = tmp_path / "data"
    _pull(dest, "-x")
    stamp = _stamp(dest)
    stamp["removed"] = True      # what the stamp holds at that moment
    stamps.write(str(dest), {k: v for k, v in stamp.items() if not k.startswith("_")})
    drive.clear_requests()

    assert _pull(dest, "-x")["action"] == "cached"
    assert (dest / "set.zip").exists()
    out = _pull(dest, "-x", "--remove-archive")

    assert out["action"] == "cached" and out["archive_removed"] is True
    assert tree(dest) == DATA and _media(drive) == 0


def test_without_extract_it_is_a_usage_error(drive, tmp_path):
    code, _, err = run("pull", "drive:d/set.zip", str(tmp_path / "data"), "--remove-archive")

    assert code == 2
    assert "--remove-archive removes the archive once --extract has extracted it; add -x " \
        "(--extract), or leave --remove-archive out to keep the archive" in err, err
    assert not (tmp_path / "data").exists()


def test_a_local_original_extracted_where_it_lies_is_never_removed(local_state, tmp_path):
    src = tmp_path / "input" / "set.zip"
    src.parent.mkdir()
    src.write_bytes(a_zip(DATA))
    dest = tmp_path / "data"

    code, _, err = run("pull", str(src), str(dest), "-x", "--remove-archive")

    assert code == 0, err
    assert src.read_bytes() == a_zip(DATA)
    assert tree(dest) == DATA
    assert "archive removed" not in err and "(extracted from where it lies, not copied)" in err


def test_a_folder_pull_removes_its_archives_and_keeps_its_other_files(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    emulator.add_file("f/one.zip", a_zip({"a.txt": b"one"}))
    emulator.add_file("f/sub/two.zip", a_zip({"b.txt": b"two"}))
    emulator.add_file("f/notes.txt", b"notes")
    dest = tmp_path / "data"

    code, _, err = run("pull", "drive:f", str(dest), "-x", "--remove-archive")

    assert code == 0, err
    assert tree(dest) == {"f/a.txt": b"one", "f/sub/b.txt": b"two", "f/notes.txt": b"notes"}
    emulator.clear_requests()
    code, _, err = run("pull", "drive:f", str(dest), "-x")
    assert code == 0 and "3 files (3 already staged)" in err, err
    assert _media(emulator) == 0


def test_a_folder_rerun_on_a_full_disk_needs_no_room_for_removed_archives(
        emulator, local_state, drive_env, fast_retries, small_disk):
    """The folder pull checks for room before it stages anything: a removed archive was
    counted as a download to come, so the rerun on the disk the removal had made room on
    failed for want of the archive's room."""
    big = os.urandom(96 * 1024)
    emulator.add_file("f/one.zip", a_zip({"a.bin": big}))
    emulator.add_file("f/two.zip", a_zip({"b.bin": big[::-1]}))
    dest = small_disk(512 * 1024) / "data"
    code, _, err = run("pull", "drive:f", str(dest), "-x", "--remove-archive")
    assert code == 0, err
    with open(dest.parent / "filler", "wb") as fh:   # what else the disk holds since
        room = os.statvfs(dest).f_bavail * os.statvfs(dest).f_frsize
        fh.write(b"\0" * (room - 16 * 1024))
    emulator.clear_requests()

    code, _, err = run("pull", "drive:f", str(dest), "-x", "--remove-archive")

    assert code == 0, err
    assert "2 files (2 already staged), 192.2 KiB, 2 members already staged, 2 archives removed" \
        in err, err
    assert _media(emulator) == 0
    assert tree(dest) == {"f/a.bin": big, "f/b.bin": big[::-1]}


def test_the_trainer_stages_its_dataset_without_the_archive(emulator, local_state, drive_env,
                                                           synth_voc, tiny_config, tmp_path):
    """`data.keep_archive: false`: the trainer's pull of data.drive_zip removes the archive,
    and the next start (a new run in the same notebook) downloads nothing."""
    from trainer.config import load_config
    from trainer.staging import stage_data

    emulator.add_file("VOC_datasets/synth.zip", str(synth_voc.zip_path))
    cfg = load_config(tiny_config(**{
        "data.drive_zip": "drive:VOC_datasets/synth.zip", "data.keep_archive": False,
        "data.train": "train", "data.val": "val",
        "data.classes": ["circle", "square", "triangle"]}))
    first = stage_data(cfg)
    emulator.clear_requests()

    again = stage_data(cfg)

    data = tmp_path / "data"
    assert not (data / "synth.zip").exists() and (data / "VOCdevkit/VOC2007/Annotations").is_dir()
    assert again.train_lines == first.train_lines and len(first.train_lines) > 0
    assert dict(emulator.api_calls()) == {"files.get": 1}


def test_another_files_staged_copy_under_the_removed_archive_name(drive, tmp_path):
    """Two Drive files of one name pulled into one DEST (which the docs advise against): the
    other's staged copy at the name is drivestage's, replaced as before with a warning,
    not refused as the user's."""
    drive.add_file("e/set.zip", a_zip({"ds/e.txt": b"echo"}))
    dest = tmp_path / "data"
    _pull(dest, "-x", "--remove-archive")
    code, _, err = run("pull", "drive:e/set.zip", str(dest), "-x")
    assert code == 0, err

    code, _, err = run("pull", "drive:d/set.zip", str(dest), "-x", "--remove-archive")

    assert code == 0, err
    assert "is the staged copy of drive:e/set.zip; drive:d/set.zip replaces it" in err, err
    assert tree(dest) == {**DATA, "ds/e.txt": b"echo"}


@pytest.mark.slow
def test_a_ctrl_c_at_any_call_of_a_pull_that_removes_the_archive(emulator, drive_env,
                                                                tmp_path, monkeypatch):
    """`pull -x --remove-archive` interrupted (Ctrl-C, in-process: a notebook) at the start
    of every 9th drivestage call (every one with DRIVESTAGE_TEST_SWEEP=all), then run again:
    exactly the members, no archive, nothing temporary, nothing held open."""
    import drivestage
    from drivestage.stage import pull
    from _sweep import every
    from test_interrupt_commands import _sweep_pulls

    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "20")
    emulator.add_file("d/set.zip", a_zip(DATA))
    store = drivestage.connect()
    step = every(9)
    landed = _sweep_pulls(range(1, 5000, step), os.path.dirname(drivestage.__file__), tmp_path,
                          lambda dest: pull("drive:d/set.zip", str(dest), extract=True,
                                            remove_archive=True, quiet=True, store=store),
                          DATA)
    assert landed > 150 // step


def test_an_archive_deleted_by_hand_is_not_fetched_again_to_be_removed(drive, tmp_path):
    """`pull -x`, then the archive deleted by hand to make room, then the same pull with
    --remove-archive: the members stand for it at once (it downloaded the archive again,
    only to remove it)."""
    dest = tmp_path / "data"
    _pull(dest, "-x")
    os.unlink(dest / "set.zip")
    drive.clear_requests()

    out = _pull(dest, "-x", "--remove-archive")

    assert out["action"] == "cached" and out["archive_removed"] is True
    assert dict(drive.api_calls()) == {"files.get": 1}
    assert tree(dest) == DATA
    assert _pull(dest, "-x")["action"] == "cached"
