"""Attacks on ``drivestage dedupe``: what a second parent, a lagging listing, a second
process, a refusing server and a SIGKILL at each request can make it do to the user's files.

Every test asserts what stays on Drive (paths, md5s, the trash) and what the user is told.
"""
from __future__ import annotations

import pytest

from test_messages_dedupe import folder, live, md5, put, run, trashed


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def put_in(store, parents: list[str], name: str, data: bytes) -> str:
    """A file with several parents (Drive allowed that until 2020; such items still exist)."""
    f = store.drive.CreateFile({"title": name, "parents": [{"id": p} for p in parents]})
    f.content = __import__("io").BytesIO(data)
    f.Upload()
    return f["id"]


def test_a_file_in_both_folders_is_not_a_copy_of_itself(emulator, store):
    """A file listed in the oldest and in the newer folder (one item, two parents) is not
    a byte-identical copy: trashing it would take it out of both. It stays, in the oldest."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    both = put_in(store, [old, new], "best.pt", b"the only best")
    code, _, err = run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert both not in trashed(emulator)
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"],
                              "runs/exp/best.pt": [md5(b"the only best")]}


def test_a_folder_in_both_folders_is_not_merged_into_itself(emulator, store):
    """A folder with two parents (the oldest and the newer one) merged "into itself" would
    see each of its files as a copy of itself, trash them all, then trash itself."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    f = store.drive.CreateFile({"title": "tb", "mimeType": "application/vnd.google-apps.folder",
                                "parents": [{"id": old}, {"id": new}]})
    f.Upload()
    put(emulator, store, f["id"], "events", b"tensorboard events")
    put(emulator, store, new, "b.txt", b"b")
    code, _, err = run("dedupe", "drive:runs/exp")
    assert code == 0, err
    assert not trashed(emulator) - {new}
    assert live(emulator) == {"runs": ["/"], "runs/exp": ["/"], "runs/exp/tb": ["/"],
                              "runs/exp/tb/events": [md5(b"tensorboard events")],
                              "runs/exp/b.txt": [md5(b"b")]}
