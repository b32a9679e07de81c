"""A fresh VM's ``mirror ./runs drive:runs --delete`` keeps the older run folders by their
mark on Drive (runmark30). The mark was read from the folder listing alone; Drive v2's
``files.list`` leaves some fields out of its items unless ``fields`` names them
(``permissions``, PyDrive issue 159), and nothing documents that ``properties`` is not one:
had it been, every older run folder went to the trash, with the checkpoints each run kept on
Drive, while every emulator test passed. A folder ``--delete`` would remove is now asked for
its own properties (one ``files.get`` each) before it goes."""
from __future__ import annotations

from _drive_state import live_md5s
from test_attackds29_run_folders import env  # noqa: F401  (env: a fixture)
from test_runmark30_marks import _fresh_vm, _mirror_once, _old_runs


def test_a_listing_without_properties_still_leaves_the_old_run_folders_whole(
        emulator, env, tmp_path, monkeypatch):
    before = _old_runs(emulator, tmp_path)
    archive = emulator.add_folder("runs/archive")   # (exp2 moved into it on Drive)
    emulator.store.update_meta(emulator.find("runs/exp2")["id"], {"parents": [{"id": archive}]})
    emulator.list_leaves_out = {"properties"}
    runs = _fresh_vm(tmp_path, monkeypatch)
    gets = len(emulator.requests)

    _mirror_once(runs)

    assert set(live_md5s(emulator, "runs")) == {"archive", "exp1", "exp3"}
    assert live_md5s(emulator, "runs/exp1") == before["exp1"]
    assert live_md5s(emulator, "runs/archive/exp2") == before["exp2"]
    trashed = {f["title"] for f in emulator.files() if f["labels"]["trashed"]}
    assert {"junk", "notes.txt"} <= trashed
    # One read per folder that --delete looked at (DEST itself, exp1, archive, exp2 in it,
    # junk): not per file, and not twice.
    asked = [r.path for r in emulator.requests[gets:]
             if r.method == "GET" and r.kind != "files.list"   # (seen36's re-check lists)
             and _mark_read(r)]
    assert sorted(asked) == sorted(set(asked)) and 1 <= len(asked) <= 5, asked


def test_a_folder_the_listing_shows_marked_is_not_asked_again(emulator, env, tmp_path,
                                                              monkeypatch):
    _old_runs(emulator, tmp_path)
    runs = _fresh_vm(tmp_path, monkeypatch)
    root, junk = emulator.find("runs")["id"], emulator.find("runs/junk")["id"]

    _mirror_once(runs)

    asked = [r.path.rsplit("/", 1)[-1] for r in emulator.requests
             if r.method == "GET" and r.kind != "files.list" and _mark_read(r)]
    # DEST itself (is it a run folder?) and the folder --delete removes; not exp1 or exp2,
    # whose marks the listing showed.
    assert sorted(asked) == sorted([root, junk])
    assert set(live_md5s(emulator, "runs")) == {"exp1", "exp2", "exp3"}


def _mark_read(request) -> bool:
    """A read of a folder's run mark: its properties' keys. Not the mirror's claim read of
    DEST (properties with their values: attackmirror42's removal of gone mirrors' claims)."""
    fields = request.query.get("fields") or ""
    return "properties" in fields and "value" not in fields
