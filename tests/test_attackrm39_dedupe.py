"""attackrm39: ``dedupe`` takes a same-bytes copy that is also in another folder out of the
newer folder only (``RemoteStore.take_out``, parents39). The copy is another user's (shared
with you as a writer), and between the check and the update another process takes it out of
its other folder: Drive puts it, left in no folder, in its owner's My Drive, which you do
not see: the update answers no parents. That is Drive's answer (an orphan, as Drive's help
calls it), not a server's lie: dedupe stopped with "Drive never does that: check
--api-root", exit 1, the merge unfinished. Now the line says where it went, and the merge
completes.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP); the other
process's removal done on the emulator's store as the update arrives. No sleeps."""
from __future__ import annotations

import pytest

from test_attackrm39_takeout import _before_update
from test_messages_dedupe import folder, put, run, trashed


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def test_another_users_copy_left_in_no_folder_you_see_is_said_not_taken_for_a_lie(
        emulator, store, monkeypatch):
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "a.pt", b"same")
    copy = emulator.add_file("theirs/a.pt", b"same", owner="bob@example.com",
                             shared_with_me="writer")
    archive = emulator.add_folder("Archive")   # (yours: you see the copy in both)
    emulator.store.update_meta(copy, {}, add_parents=[archive, new], remove_parents=[
        emulator.find("theirs", owner="bob@example.com")["id"]])
    done = _before_update(emulator, monkeypatch, lambda: emulator.store.update_meta(
        copy, {}, remove_parents=[archive]))

    code, _, err = run("dedupe", "drive:runs/exp")

    assert done, err
    assert emulator.store.get(copy)["parents"] == [
        emulator.store.owner_root("bob@example.com")], err
    assert copy not in trashed(emulator), err
    assert "--api-root" not in err, err
    assert [x for x in err.splitlines() if "runs/exp/a.pt" in x] == [
        "WARNING drivestage.drive.store: drive:runs/exp/a.pt: taken out of drive:runs/exp "
        "only, not deleted; it was no longer in its other folder (id "
        f"{archive}: taken out of it meanwhile), and Drive placed it in no folder you see "
        "(its owner's My Drive, or none: search Drive for it by name)"], err
    assert code == 0, err
    assert new in trashed(emulator), err
    # The summary agrees with the warning (it said the copy stays in its other folder:
    # leftovers39).
    assert [x for x in err.splitlines() if x.startswith("dedupe ")] == [
        "dedupe drive:runs/exp: 1 folder merged: 0 moved, 0 copies trashed, 1 empty folder "
        "trashed, 1 copy taken out (no longer in its other folder: Drive placed it elsewhere, "
        "as said above)"], err
