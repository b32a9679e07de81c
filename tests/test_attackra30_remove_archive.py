"""Attacks on `pull -x --remove-archive` (attackra30): what it must never remove."""
from __future__ import annotations

import os

from _archives import a_fixed_zip as a_zip, tree
from _cli import run
from _drivemount import working_drive_mount  # noqa: F401 (a fixture)

DATA = {"ds/a.txt": b"alpha", "ds/b.txt": b"bravo"}


def test_an_archive_on_the_drive_mount_pulled_into_its_own_folder_stays(
        local_state, working_drive_mount):
    """`pull /content/drive/MyDrive/data/set.zip /content/drive/MyDrive/data -x
    --remove-archive`: a file on a Drive mount is copied, not extracted where it lies, and
    the copy's name was the original's own: the pull adopted it ("already there, md5
    verified"), then removed it, the user's file on Drive, as the archive it had staged."""
    mount = working_drive_mount
    data = mount.point / "MyDrive" / "data"
    data.mkdir(parents=True)
    (data / "set.zip").write_bytes(a_zip(DATA))

    code, _, err = run("pull", str(data / "set.zip"), str(data), "-x", "--remove-archive")

    assert code == 0, err
    assert (data / "set.zip").read_bytes() == a_zip(DATA)
    assert (data / "ds" / "a.txt").read_bytes() == b"alpha"
    assert f"--remove-archive keeps {data / 'set.zip'}: it is {data / 'set.zip'} itself, " \
        "the file pulled, not a copy" in err, err
    assert "archive removed" not in err, err
    code, _, err = run("pull", str(data / "set.zip"), str(data), "-x", "--remove-archive")
    assert code == 0 and (data / "set.zip").read_bytes() == a_zip(DATA), err


def test_an_archive_the_drive_mount_shows_is_not_removed_through_it(
        local_state, drive_env, emulator, working_drive_mount):
    """`pull drive:data/set.zip /content/drive/MyDrive/data -x --remove-archive`: DEST is
    Drive's own folder through the mount, whose `set.zip` is the very Drive file pulled. The
    pull adopted it ("already there, md5 verified") and removed it, so the dataset went to
    Drive's trash. In the mount, the archive is kept, and said."""
    mount = working_drive_mount
    emulator.add_file("data/set.zip", a_zip(DATA))
    data = mount.point / "MyDrive" / "data"
    data.mkdir(parents=True)
    (data / "set.zip").write_bytes(a_zip(DATA))   # Drive's file, as the mount shows it

    code, _, err = run("pull", "drive:data/set.zip", str(data), "-x", "--remove-archive")

    assert code == 0, err
    assert mount.cached()["MyDrive/data/set.zip"] == a_zip(DATA)
    assert mount.cached()["MyDrive/data/ds/b.txt"] == b"bravo"
    assert f"--remove-archive keeps {data / 'set.zip'}: it lies in the Google Drive mount " \
        f"{mount.point}, where it may be the Drive file itself (removed, it would go to " \
        "Drive's trash); pull to local disk (e.g. /content/data) to remove it" in err, err
    assert "archive removed" not in err, err


def test_two_archives_that_share_a_file_are_not_downloaded_again_at_each_rerun(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """A notebook's `pull drive:d/train.zip data -x --remove-archive`, then the same for
    val.zip, both with a `README.txt`: val's extraction replaced train's README, so each
    rerun of the notebook found a member of the other "changed" and downloaded both archives
    again, whole, only to write the README back and remove them (a removed archive had
    nothing else to put it back from). The path is the later archive's, as `unzip train.zip;
    unzip val.zip` leaves it; a member deleted by hand still brings its archive back."""
    train = {"data/README.txt": b"train split\n", "data/train/1.jpg": b"1" * 100}
    val = {"data/README.txt": b"val split\n", "data/val/2.jpg": b"2" * 100}
    emulator.add_file("d/train.zip", a_zip(train))
    emulator.add_file("d/val.zip", a_zip(val))
    dest = tmp_path / "data"
    for name in ("train", "val"):
        code, _, err = run("pull", f"drive:d/{name}.zip", str(dest), "-x", "--remove-archive")
        assert code == 0, err
    emulator.clear_requests()

    for flags in (["--remove-archive"], []):
        for name in ("train", "val"):
            code, _, err = run("pull", f"drive:d/{name}.zip", str(dest), "-x", *flags)
            assert code == 0 and f"{name}.zip: already staged (" in err, err

    assert emulator.api_calls("media.download") == 0
    assert tree(dest) == {**train, **val}
    os.unlink(dest / "data" / "train" / "1.jpg")
    code, _, err = run("pull", "drive:d/train.zip", str(dest), "-x", "--remove-archive")
    assert code == 0 and emulator.api_calls("media.download") == 1, err
    assert tree(dest) == {**val, **train}
