"""Attacks: a Drive whose files.list lags behind it, as Google's does (eventually consistent):
an item just created is missing from listings and searches by name for a while, one just
deleted is still listed, one just changed is listed as it was. The emulator's
``faults.lag_listing`` makes that happen by count of list answers, never by time.

What is asserted: the exact files (name -> md5s) left on Drive, that every checkpoint a push
sent stays vouched for by its sidecar, which checkpoint a resume takes, and that pushes and
deletions answered "already gone" neither loop nor fail."""
from __future__ import annotations

import json
import os
import time

import pytest

from _checkpoints import md5, save
from _drive_state import live_md5s

FOLDER = "Models/logs"
T0 = time.time() - 3600


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter, for every test here."""


def _store(emu):
    """A connection of its own: another process, or another machine."""
    from drivestage.drive import connect

    return connect(api_root=emu.url, token="test-token")


def _titles(store, path: str) -> list[str]:
    return sorted(e.name for e in store.list(store.resolve(path)))


# ------------------------------------------------------------------ the fault itself

def test_lag_listing_hides_new_items_shows_gone_and_old_ones_by_count(emulator, local_state):
    """Deterministic by list answers that would hold the item: a new file misses the next
    ``created``, a deleted one stays ``deleted`` more, a changed one is listed as it was for
    ``updated``; files.get always answers the truth. Nothing lags by default."""
    emu = emulator
    old = emu.add_file(f"{FOLDER}/old.bin", b"old")
    changed = emu.add_file(f"{FOLDER}/changed.bin", b"v1")
    store = _store(emu)
    assert _titles(store, FOLDER) == ["changed.bin", "old.bin"]
    emu.add_file(f"{FOLDER}/a.bin", b"a")
    assert _titles(store, FOLDER) == ["a.bin", "changed.bin", "old.bin"]  # no lag by default

    emu.faults.lag_listing(created=2, updated=1, deleted=3)
    emu.add_file(f"{FOLDER}/new.bin", b"new")
    emu.store.delete(old)
    emu.store.update_meta(changed, {"title": "renamed.bin"})
    assert _titles(store, FOLDER) == ["a.bin", "changed.bin", "old.bin"]
    assert _titles(store, FOLDER) == ["a.bin", "old.bin", "renamed.bin"]
    assert _titles(store, FOLDER) == ["a.bin", "new.bin", "old.bin", "renamed.bin"]
    assert _titles(store, FOLDER) == ["a.bin", "new.bin", "renamed.bin"]
    # A search by name lags the same way; a read by id never does.
    emu.add_file(f"{FOLDER}/b.bin", b"b")
    from drivestage.errors import NotFoundError
    for _ in range(2):
        with pytest.raises(NotFoundError):
            store.resolve(f"{FOLDER}/b.bin")
    entry = store.resolve(f"{FOLDER}/b.bin")
    assert store.stat(entry).md5 == md5(b"b")
    assert emu.faults.describe()["lag_listing"] == {"created": 2, "updated": 1, "deleted": 3,
                                                     "titles": None}
    emu.faults.clear()
    assert emu.faults.describe()["lag_listing"] is None
