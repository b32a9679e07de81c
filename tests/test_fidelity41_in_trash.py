"""fidelity41: ``pull drive:PATH`` whose PATH goes through Drive's trash says so, also where
the trashed step is not the first one missing, and where the folder holds more than a page of
items of that name. Before, the look-up asked one page of 100 items, at the first missing
step only, and the pull said "not found … names are case-sensitive" (trashed40's note)."""
from __future__ import annotations

import pytest

from _cli import run

pytestmark = pytest.mark.usefixtures("local_state")   # (drivestage's state in tmp_path)


def _last(err: str) -> str:
    return err.strip().splitlines()[-1]


def test_a_folder_trashed_and_made_anew_since_is_named(emulator, drive_env, tmp_path):
    """``runs/a`` trashed with ``f.txt`` in it, then a new ``runs/a`` made (a push makes its
    DEST again): the path's live folders hold no ``f.txt``; the trashed ``a`` does."""
    emulator.add_file("runs/a/f.txt", b"hello")
    emulator.store.set_trashed(emulator.find("runs/a")["id"], True)
    emulator.add_file("runs/a/other.txt", b"new")              # runs/a made anew
    code, _, err = run("pull", "drive:runs/a/f.txt", str(tmp_path / "out"))
    assert code == 1, err
    assert _last(err) == ("Error: drive:runs/a is in the trash; restore it first "
                          "(the path drive:runs/a/f.txt goes through it)"), err
    assert not (tmp_path / "out" / "f.txt").exists()


def test_a_trashed_file_among_more_than_a_page_of_its_name_is_named(emulator, drive_env, tmp_path):
    """``title =`` ignores case on Drive: 150 trashed ``F.TXT`` (a file pushed again and
    again) come before ``f.txt`` in the answer; the look-up reads every page."""
    for i in range(150):
        emulator.store.set_trashed(emulator.add_file("runs/a/F.TXT", b"%d" % i), True)
    emulator.store.set_trashed(emulator.add_file("runs/a/f.txt", b"mine"), True)
    code, _, err = run("pull", "drive:runs/a/f.txt", str(tmp_path / "out"))
    assert code == 1, err
    assert _last(err) == "Error: drive:runs/a/f.txt is in the trash; restore it first", err


def test_a_name_nowhere_still_says_not_found_in_a_few_requests(emulator, drive_env, tmp_path):
    emulator.add_file("runs/a/f.txt", b"hello")
    emulator.add_file("runs/b/f.txt", b"trashed")
    emulator.store.set_trashed(emulator.find("runs/b")["id"], True)
    before = len(emulator.requests)
    code, _, err = run("pull", "drive:runs/a/g.txt", str(tmp_path / "out"))
    assert code == 1, err
    assert _last(err).startswith("Error: drive:runs/a/g.txt not found"), err
    lists = [r for r in emulator.requests[before:] if r.kind == "files.list"]
    # The resolve's 3, the trash where it stopped 1, the walk one a step (3): no more.
    assert len(lists) == 7, [r.query.get("q") for r in lists]
