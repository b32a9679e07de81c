"""Attacks on `pull -x --remove-archive` (attackp31)."""
from __future__ import annotations

import json
import os

from _archives import a_fixed_zip as a_zip, tree
from _cli import run

DATA = {"ds/a.txt": b"alpha", "ds/b.txt": b"bravo"}
FIXES = {"a.txt": b"alpha, fixed", "o.txt": b"other"}


def _pull(src: str, dest, *more: str) -> dict:
    code, out, err = run("pull", src, str(dest), "--json", "-x", "--remove-archive", *more)
    assert code == 0, err
    return json.loads(out)


def test_an_archive_pulled_into_a_folder_of_another_ones_dest_is_not_downloaded_at_each_rerun(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """`pull drive:d/set.zip data -x --remove-archive`, then an overlay archive pulled into
    a folder inside that DEST (`data/ds`) over one of set.zip's files: the two DESTs' stamps
    are in two state folders, so at every rerun each found its file changed and downloaded
    its archive, whole, to write it back (then the other did the same). The later
    extraction holds the path, as `unzip set.zip -d data; unzip fixes.zip -d data/ds` leaves
    it, and a rerun of either downloads nothing; a member gone still brings its archive back."""
    emulator.add_file("d/set.zip", a_zip(DATA))
    emulator.add_file("d/fixes.zip", a_zip(FIXES))
    data = tmp_path / "data"
    _pull("drive:d/set.zip", data)
    _pull("drive:d/fixes.zip", data / "ds")
    emulator.clear_requests()

    for _ in range(2):
        assert _pull("drive:d/set.zip", data)["action"] == "cached"
        assert _pull("drive:d/fixes.zip", data / "ds")["action"] == "cached"

    assert emulator.api_calls("media.download") == 0
    assert tree(data) == {"ds/a.txt": b"alpha, fixed", "ds/b.txt": b"bravo", "ds/o.txt": b"other"}
    os.unlink(data / "ds" / "a.txt")
    assert _pull("drive:d/set.zip", data)["action"] == "download"
    assert (data / "ds" / "a.txt").read_bytes() == b"alpha"


def test_a_folder_rerun_over_an_archive_removed_then_restricted_downloads_nothing(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """A teacher's folder pulled with `-x --remove-archive`, then its owner turned
    downloading off: the notebook's rerun stopped ("its owner has turned off downloading",
    exit 1) while listing, for an archive whose members are in place and that nothing needs
    to download, where a pull of that archive alone says "already staged" (as does the same
    rerun with the archive kept). A member gone still stops it, before any media request."""
    teacher = "teacher@school.edu"
    emulator.add_shortcut("Course", emulator.add_folder("Course", owner=teacher,
                                                        shared_with_me="reader"))
    fid = emulator.add_file("Course/sub/set.zip", a_zip(DATA), owner=teacher)
    emulator.add_file("Course/README.txt", b"read me", owner=teacher)
    dest = tmp_path / "d"
    _pull("drive:Course", dest)
    emulator.restrict_download(fid)
    emulator.clear_requests()

    code, _, err = run("pull", "drive:Course", str(dest), "-x", "--remove-archive")

    assert code == 0, err
    assert "2 files (2 already staged)" in err and ", 1 archive removed, " in err, err
    assert emulator.api_calls("media.download") == 0
    assert tree(dest) == {"Course/README.txt": b"read me", "Course/sub/ds/a.txt": b"alpha",
                          "Course/sub/ds/b.txt": b"bravo"}
    os.unlink(dest / "Course/sub/ds/a.txt")
    code, _, err = run("pull", "drive:Course", str(dest), "-x", "--remove-archive")
    assert code == 1 and "sub/set.zip: its owner has turned off downloading" in err, err
    assert emulator.api_calls("media.download") == 0
