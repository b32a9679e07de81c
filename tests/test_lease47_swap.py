"""lease47: the write the lease's arbiter is made of (``FolderMaking.swap_properties``): one
``files.patch`` of a folder's properties naming the etag it was read with (``If-Match``).
Written where the folder is as read, losing none of its other properties whether Drive
merges a patch's ``properties`` or replaces the array (the v2 reference does not say; the
emulator does either); refused (412) where it changed since, as
:class:`PreconditionFailedError` (a RemoteError, never a NotFoundError a caller takes for
"gone"), nothing written. The real googleapiclient stack against the emulator."""
from __future__ import annotations

import pytest

from drivestage.errors import NotFoundError, PreconditionFailedError


def _props(emulator, fid) -> dict:
    return {p["key"]: p["value"] for p in emulator.properties_of(fid)
            if p.get("value") is not None}


@pytest.mark.parametrize("replaces", [False, True], ids=["merges", "replaces"])
def test_a_swap_of_a_folder_as_read_keeps_its_other_properties(emulator, store, replaces):
    from drivestage.store import RemoteEntry

    emulator.patch_replaces_properties = replaces
    fid = emulator.add_folder("runs/exp")
    emulator.set_properties(fid, [{"key": "run-mark", "value": "1", "visibility": "PUBLIC"},
                                  {"key": "other-tool", "value": "x", "visibility": "PUBLIC"}])
    folder = RemoteEntry(fid, "exp", True)
    etag, props = store.properties_as_read(folder)
    assert etag == emulator.find("runs/exp")["etag"]
    made = store.swap_properties(folder, etag, props + [
        {"key": "trainer-lease", "value": "1 abc F1", "visibility": "PUBLIC"}])
    assert made == emulator.find("runs/exp")["etag"] != etag
    assert _props(emulator, fid) == {"run-mark": "1", "other-tool": "x",
                                     "trainer-lease": "1 abc F1"}


def test_a_swap_of_a_folder_changed_since_it_was_read_is_refused_and_writes_nothing(
        emulator, store):
    from drivestage.store import RemoteEntry

    fid = emulator.add_folder("runs/exp")
    folder = RemoteEntry(fid, "exp", True)
    etag, props = store.properties_as_read(folder)
    store.set_public_property(folder, "other-tool", "y")   # (another writer, meanwhile)
    with pytest.raises(PreconditionFailedError) as refused:
        store.swap_properties(folder, etag, props + [
            {"key": "trainer-lease", "value": "1 abc F1", "visibility": "PUBLIC"}])
    assert not isinstance(refused.value, NotFoundError)
    assert str(refused.value) == (
        f"write if unchanged the properties of drive:id:{fid}: not written: it changed on "
        "Drive since it was read (HTTP 412 conditionNotMet: Precondition Failed)")
    assert _props(emulator, fid) == {"other-tool": "y"}
    [patch] = [r for r in emulator.requests if r.method == "PATCH"]
    assert {k.lower(): v for k, v in patch.headers.items()}["if-match"] == etag
