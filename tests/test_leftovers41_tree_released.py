"""The member tree an extraction checks and merges by (:func:`drivestage.extract.merging.
archive_tree`, cached for the list's second ask: tail39) is released when the extraction
ends. It was kept, with every member's Entry, until the next extraction: megabytes for a
20,000-member archive, for good, in a notebook's kernel or a trainer that staged its data
(attackearly40, attackpull40)."""
from __future__ import annotations

import gc
import os
import weakref

import pytest

from drivestage.extract import extract, merging
from drivestage.stage import pull

from _archives import a_zip, tree

#: Members under folders the zip does not list: the tree adds them (its own Entries).
MEMBERS = {f"ds/part{i}/f{j}.txt": f"{i} {j}\n".encode() for i in range(3) for j in range(4)}


@pytest.fixture
def trees(monkeypatch) -> list:
    """Weak references to the Entries each tree asked for holds (the folders it added)."""
    held: list = []
    real = merging.archive_tree

    def archive_tree(entries):
        got = real(entries)
        held.extend(weakref.ref(e) for e in got.values() if e not in entries)
        return got

    monkeypatch.setattr(merging, "archive_tree", archive_tree)
    return held


def _alive(refs: list) -> int:
    gc.collect()
    return sum(ref() is not None for ref in refs)


def test_an_extraction_releases_its_member_tree(tmp_path, trees):
    archive = tmp_path / "set.zip"
    archive.write_bytes(a_zip(MEMBERS))
    extract(archive, tmp_path / "data")
    assert tree(tmp_path / "data") == MEMBERS
    assert len(trees) >= 4 and _alive(trees) == 0   # ds, ds/part0, ds/part1, ds/part2


def test_a_refused_extraction_releases_it_too(tmp_path, trees):
    """A member where DEST has a folder of the user's: refused once the tree is made."""
    archive = tmp_path / "set.zip"
    archive.write_bytes(a_zip({**MEMBERS, "ds/part0/keep": b"file"}))
    (tmp_path / "data" / "ds" / "part0" / "keep").mkdir(parents=True)
    with pytest.raises(Exception, match="keep"):
        extract(archive, tmp_path / "data")
    assert trees and _alive(trees) == 0


def test_a_pull_extract_from_drive_releases_it(emulator, drive_env, local_state, tmp_path,
                                               trees):
    blob = a_zip(MEMBERS)
    emulator.add_file("d/set.zip", blob)
    pull("drive:d/set.zip", str(tmp_path / "data"), extract=True, quiet=True)
    assert tree(tmp_path / "data") == {"set.zip": blob, **MEMBERS}
    assert trees and _alive(trees) == 0
