"""``push --delete`` behind a server that lies about what it lists (tests/_proxy.py in front
of the emulator), by attackpush32."""
from __future__ import annotations

import json

import pytest

from _cli import run
from _drive_state import live_md5s
from _liar import liar_env, one_error_line  # noqa: F401  (fixtures)
from _proxy import Reply
from test_runmark30_marks import _fresh_vm, _old_runs


def _listed_as(name: str, change: dict):
    """Listings show the folder ``name`` changed by ``change`` (a proxy, a server not Drive)."""
    def mutate(status, headers, body):
        obj = json.loads(body)
        for it in obj.get("items", []):
            if it.get("title") == name:
                it.pop("properties", None)
                it.update(change)
        data = json.dumps(obj).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(data))
        return Reply(status, out, [data])
    return mutate


A_FILE = {"mimeType": "application/octet-stream", "md5Checksum": "0" * 32, "fileSize": "5"}


def _a_shortcut(emulator) -> dict:
    return {"mimeType": "application/vnd.google-apps.shortcut",
            "shortcutDetails": {"targetId": emulator.add_folder("elsewhere"),
                                "targetMimeType": "application/vnd.google-apps.folder"}}


@pytest.mark.parametrize("kind", ["file", "shortcut"])
def test_a_run_folder_listed_as_another_kind_is_not_deleted(emulator, proxy, liar_env,
                                                            tmp_path, monkeypatch, kind):
    """A fresh VM's ``push ./runs drive:runs --delete-permanently`` behind a listing that
    shows the run folder exp2 as a file, or as a shortcut to a folder elsewhere: exp2 was
    deleted whole, checkpoints and all. As a file, the deletion's own files.get answered a
    folder, but only its name, parent and md5 were compared; as a shortcut, nothing was read
    before its delete (by the "shortcut's" own id: exp2's). Drive never changes an item's
    kind: the push stops, exp2 untouched."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    before = _old_runs(emulator, tmp_path)
    change = A_FILE if kind == "file" else _a_shortcut(emulator)
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    runs = _fresh_vm(tmp_path, monkeypatch)
    proxy.on("GET", r"^/drive/v2/files\?", _listed_as("exp2", change))

    code, _, err = run("push", str(runs), "drive:runs", "--delete-permanently")

    assert one_error_line(code, err) == (
        f"Error: delete drive:runs/exp2: the server listed it as a {kind}, but files.get "
        "answers a folder; stopped, not deleted. Drive never does that: check --api-root / "
        "DRIVESTAGE_API_ROOT and any proxy or cache between you and Drive")
    assert live_md5s(emulator, "runs/exp2") == before["exp2"]
    assert live_md5s(emulator, "runs/exp1") == before["exp1"]


@pytest.mark.parametrize("kind", ["file", "shortcut"])
def test_a_lone_delete_of_a_folder_taken_for_another_kind_deletes_nothing(emulator, store,
                                                                          kind):
    """The same check on a lone deletion (a duplicate's repair, dedupe): no batch."""
    from drivestage.drive.resources import DriveEntry
    from drivestage.errors import WrongItemError

    runs = emulator.add_folder("runs")
    folder = emulator.add_folder("runs/exp2")
    emulator.add_file("runs/exp2/epoch_001.pt", b"w" * 10)
    entry = DriveEntry(id=folder, name="exp2", is_dir=False, parent_id=runs) \
        if kind == "file" else DriveEntry(id=emulator.add_folder("elsewhere"), name="exp2",
                                          is_dir=True, parent_id=runs, shortcut_id=folder)

    with pytest.raises(WrongItemError, match=f"listed it as a {kind}, but files.get answers "
                                             "a folder; stopped, not deleted"):
        store.delete(entry, trash=False)

    assert set(live_md5s(emulator, "runs/exp2")) == {"epoch_001.pt"}
