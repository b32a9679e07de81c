"""marks32: a run folder made before its run (by hand, by another tool) was marked by one
``files.patch`` carrying the two run marks in ``properties``. Whether Drive v2's patch merges
that array into the folder's properties or replaces it, the reference does not say
(fidelity32); had it replaced it, marking wiped every property other tools had put on the
folder. The marks now go by ``properties.insert`` ("adds a property to a file, or updates it
if it already exists"), one each, which leaves the others whatever a patch does."""
from __future__ import annotations

import pytest

from _drive_clients import drive_service
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)
from test_runmark30_marks import OURS
from trainer.drive import DriveFolder, retention_policy

THEIRS = [{"key": "owner-tool", "value": "labels-v3", "visibility": "PUBLIC"},
          {"key": "sync-id", "value": "42", "visibility": "PRIVATE"}]


@pytest.mark.parametrize("replaces", [False, True], ids=["patch-merges", "patch-replaces"])
def test_marking_an_older_folder_keeps_the_properties_already_on_it(emulator, env, tmp_path,
                                                                    replaces):
    emulator.patch_replaces_properties = replaces
    folder = emulator.add_folder("runs/exp1")
    emulator.set_properties(folder, THEIRS[:1], app="another-app")
    emulator.set_properties(folder, THEIRS[1:])     # this app's own, set by another of its tools
    run_dir = tmp_path / "exp1"
    run_dir.mkdir()
    _save(str(run_dir), 1)
    emulator.clear_requests()

    DriveFolder("drive:runs/exp1", str(run_dir), retention_policy(0, 0, None)).push()

    props = emulator.properties_of(folder)
    key = lambda p: (p["key"], p["visibility"])   # noqa: E731
    assert sorted(props, key=key) == sorted(
        [dict(THEIRS[0], app=None), dict(THEIRS[1], app="app-default"), *OURS], key=key)
    assert emulator.api_calls("properties.insert") == 2
    assert emulator.api_calls("files.patch") == 0


def test_the_emulators_properties_insert_updates_in_place(emulator, env):
    """Drive's words for properties.insert: adds, or updates the one of that key and
    visibility; the answer is the property."""
    folder = emulator.add_folder("f")
    emulator.set_properties(folder, [{"key": "k", "value": "1", "visibility": "PUBLIC"}])
    service = drive_service(emulator.url)
    got = service.properties().insert(fileId=folder, body={"key": "k", "value": "2",
                                                           "visibility": "PUBLIC"}).execute()
    assert (got["key"], got["value"], got["visibility"]) == ("k", "2", "PUBLIC")
    service.properties().insert(fileId=folder, body={"key": "p", "value": "3"}).execute()
    assert emulator.properties_of(folder) == [
        {"key": "k", "value": "2", "visibility": "PUBLIC", "app": None},
        {"key": "p", "value": "3", "visibility": "PRIVATE", "app": "app-default"}]
