"""attackrm39: ``push --delete`` removes an item with two parents (kept from before 2020)
from one folder of DEST item by item while its other folder of DEST goes whole: the store's
check lets it go from both (``delete_many``'s ``removed_from``, parents39). The folder that
goes whole may be left at its own check, just before the removals (a run on another machine
marked it meanwhile): then the item must not go either; its removal takes it from that
folder too, the run folder left to keep what it holds (parents39's note left this open).

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP); the mark set
on the emulator's store as the check before its removal reads the folder (alone or in a
batch). No sleeps."""
from __future__ import annotations

from _cli import run
from drivestage.drive.resources import RUN_MARK
from test_attacksync36_walk import _parents
from test_outside38_delete import _ids, _src


def test_an_item_also_in_a_folder_left_at_its_check_stays_there(
        emulator, local_state, drive_env, tmp_path, monkeypatch):
    emulator.add_file("runs/a/x.txt", b"x\n")
    emulator.add_file("runs/a/keep.log", b"log\n")
    emulator.add_file("runs/c/y.txt", b"y\n")
    _parents(emulator, "runs/a/x.txt", "runs/c")
    ids = _ids(emulator, "runs/a/x.txt", "runs/c", "runs/c/y.txt")
    plan, marked = emulator.faults.plan, []

    def another_run(method, target, **kw):
        # (the check's read, not the decision's of its properties alone)
        if method == "GET" and f"/files/{ids['runs/c']}?" in target and \
                "fields=" not in target and not marked:
            marked.append(1)
            emulator.set_properties(ids["runs/c"], [{"key": RUN_MARK, "value": "1",
                                                     "visibility": "PUBLIC"}])
        return plan(method, target, **kw)
    monkeypatch.setattr(emulator.faults, "plan", another_run)

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete-permanently",
                       "--exclude", "*.log")

    assert marked and code == 0, err
    c = ids["runs/c"]
    assert sorted(ch["title"] for ch in emulator.store.children(c)
                  if not ch["trashed"]) == ["x.txt", "y.txt"], err
    assert sorted(emulator.store.get(ids["runs/a/x.txt"])["parents"]) == sorted(
        [emulator.find("runs/a")["id"], c]), err
    assert not emulator.store.get(ids["runs/a/x.txt"])["trashed"], err
    assert [x for x in err.splitlines() if "not deleted" in x or "removed" in x] == [
        "WARNING drivestage.drive.store: drive:runs/c was marked a run folder on Drive since "
        "it was listed; not deleted",
        "WARNING drivestage.drive.store: drive:runs/a/x.txt was not deleted: it is also in "
        "another folder (an item with two parents, kept from before 2020), and its removal "
        "would take it from there too. Take it out of drive:runs/a on Drive (it stays in its "
        "other folder) to let it go",
        "WARNING drivestage.extra: --delete: removed 0 of those 3 items from drive:runs; 3 "
        "were left in place (the lines above say why)"], err
