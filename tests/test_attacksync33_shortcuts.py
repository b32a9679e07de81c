"""A shortcut moved since the listing that dooms it, by attacksync33."""
from __future__ import annotations

import pytest

from drivestage.errors import LeftAloneError


@pytest.mark.parametrize("alone", [False, True], ids=["batch", "lone"])
def test_a_shortcut_moved_away_since_it_was_listed_is_not_deleted(emulator, store, alone):
    """``push --delete`` (or a dedupe) about to remove a file shortcut and a folder shortcut
    in DEST that a lagging listing still showed there, after the user moved both into a
    folder of their own to keep them: each was read by its own id (is it a shortcut?) and
    deleted from its new place. A file is left so; a shortcut now is too."""
    emulator.add_folder("out")
    mine = emulator.add_folder("mine")
    ids = [emulator.add_shortcut("out/link.bin", emulator.add_file("keep/data.bin", b"d")),
           emulator.add_shortcut("out/dir", emulator.add_folder("keep/dir"))]
    entries = store.list(store.resolve("out"))
    assert sorted(e.name for e in entries) == ["dir", "link.bin"]
    for sid in ids:
        emulator.store.update_meta(sid, {"parents": [{"id": mine}]})

    if alone:
        for e in entries:
            with pytest.raises(LeftAloneError, match="moved into another folder"):
                store.delete(e)
    else:
        got = store.delete_many(entries, trash=True)
        assert all(isinstance(got[e.id], LeftAloneError) for e in entries), got

    assert sorted(e.name for e in store.list(store.resolve("mine"))) == ["dir", "link.bin"]
    assert not [f for f in emulator.files() if f["id"] in ids and f["labels"]["trashed"]]
