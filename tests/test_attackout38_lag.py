"""attackout38: outside38 kept an item for a second parent that only a lagging listing still
showed. Drive's listings are eventually consistent; files.get is current. The user takes
``Photos`` out of ``runs/old/sub`` (it stays in My Drive's top), then pushes with --delete:
the listing still shows ``sub`` holding it, and ``old`` was kept for it, with a line telling
the user to do what they had just done. (The file case is tests/test_attack22_push_listed.py's
``test_an_item_with_two_parents_still_in_dest_is_deleted_by_push_delete``, green on main and
red on outside38.) Now each item kept for a second parent is read again (one files.get, only
for those): on what it is in now, ``old`` goes, ``Photos`` stays.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP with its
listing lag). No sleeps."""
from __future__ import annotations

from collections import Counter

from _cli import run
from test_outside38_delete import _deep, _ids, _src, _trashed


def test_a_second_parent_only_a_lagging_listing_shows_keeps_nothing(
        emulator, local_state, drive_env, tmp_path):
    _deep(emulator)
    ids = _ids(emulator, "Photos", "Photos/pic.jpg", "runs/old", "runs/old/notes.txt")
    emulator.faults.lag_listing(updated=20)
    sub = emulator.find("runs/old/sub")["id"]
    emulator.store.update_meta(ids["Photos"], {}, remove_parents=[sub])
    emulator.clear_requests()

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert "--delete kept" not in err, err
    assert _trashed(emulator, ids) == {"Photos": False, "Photos/pic.jpg": False,
                                       "runs/old": True, "runs/old/notes.txt": True}, err


def test_a_second_parent_still_there_is_read_once_and_kept(emulator, local_state, drive_env,
                                                          tmp_path):
    """No lag: the fresh read agrees, ``old`` is kept as outside38 said, at one files.get
    more (Photos's), and nothing of Photos goes."""
    _deep(emulator)
    ids = _ids(emulator, "Photos", "Photos/pic.jpg", "runs/old")
    emulator.clear_requests()

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert "--delete kept drive:runs/old: it holds drive:runs/old/sub/Photos" in err, err
    assert _trashed(emulator, ids) == {"Photos": False, "Photos/pic.jpg": False,
                                       "runs/old": False}, err
    gets = Counter(r.path.rsplit("/", 1)[-1] for r in emulator.requests
                   if r.kind == "files.get")
    # (one as before this change, as for each folder the walk meets; one: its parents now)
    assert gets[ids["Photos"]] == 2, gets
