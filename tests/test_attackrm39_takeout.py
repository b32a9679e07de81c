"""attackrm39: ``RemoteStore.take_out`` (parents39) under a second process and a lying
server. A replaced ``best.pt``'s old copy, filed before 2020 in ``Archive`` too, is taken out
of the run folder only (files.get, then files.update ``removeParents``).

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP); what another
process does between two requests is done on the emulator's store when the second request
arrives (``faults.plan``, as tests/test_push_other_runs.py does). No sleeps."""
from __future__ import annotations

import hashlib

from _cli import run
from _drive_state import live_md5s
from test_outside38_delete import _src


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _world(emulator, tmp_path, owner=None):
    old = emulator.add_file("runs/exp2/best.pt", b"old weights")
    archive = emulator.add_folder("Archive")
    emulator.store.update_meta(old, {}, add_parents=[archive])
    src = _src(tmp_path)
    (src / "exp2" / "best.pt").write_bytes(b"new weights!")
    return old, archive, src


def _before_update(emulator, monkeypatch, act):
    """``act()`` once, as the files.update removeParents request arrives (after the check)."""
    plan, done = emulator.faults.plan, []

    def other_process(method, target, **kw):
        if "removeParents=" in target and not done:
            done.append(1)
            act()
        return plan(method, target, **kw)
    monkeypatch.setattr(emulator.faults, "plan", other_process)
    return done


def test_its_other_folder_taken_away_meanwhile_it_is_not_said_to_stay_there(
        emulator, local_state, drive_env, tmp_path, monkeypatch):
    """Another process (a push of ``Archive``'s own run, the user) takes it out of
    ``Archive`` between the check and the update: Drive puts it, left in no folder, at the
    top of My Drive. Its bytes are kept; the line must not say it stays in ``Archive``, and
    says where it is."""
    old, archive, src = _world(emulator, tmp_path)
    done = _before_update(emulator, monkeypatch, lambda: emulator.store.update_meta(
        old, {}, remove_parents=[archive]))

    code, _, err = run("push", str(src), "drive:runs")

    assert done and code == 0, err
    assert old in emulator.store.files and not emulator.store.get(old)["trashed"], err
    assert emulator.store.get(old)["parents"] == [emulator.store.root_id], err
    assert live_md5s(emulator, "runs/exp2")["best.pt"] == [_md5(b"new weights!")], err
    assert "where it stays" not in err, err
    said = [x for x in err.splitlines() if "drive:runs/exp2/best.pt" in x]
    assert said == [
        "WARNING drivestage.drive.store: drive:runs/exp2/best.pt: taken out of "
        "drive:runs/exp2 only, not deleted; it was no longer in its other folder (id "
        f"{archive}: taken out of it meanwhile), and Drive placed it at the top of My Drive "
        f"(id {emulator.store.root_id}), where it is now"], err



def test_a_server_that_answers_the_update_and_keeps_the_folder_stops_the_push(
        emulator, local_state, drive_env, tmp_path, monkeypatch):
    """A lying server (a proxy, a look-alike) answers 200 to the removeParents update and
    keeps the item in the run folder: the answer shows it there still. The push stops with
    one line, the new copy and the old one both kept, the old one never deleted."""
    old, archive, src = _world(emulator, tmp_path)
    update = emulator.store.update_meta

    def keeps(file_id, meta, *, remove_parents=(), **kw):
        return update(file_id, meta, **kw)
    monkeypatch.setattr(emulator.store, "update_meta", keeps)

    code, _, err = run("push", str(src), "drive:runs")

    exp2 = emulator.find("runs/exp2")["id"]
    assert code == 1, err
    assert sorted(emulator.store.get(old)["parents"]) == sorted([exp2, archive]), err
    assert live_md5s(emulator, "runs/exp2")["best.pt"] == sorted(
        [_md5(b"old weights"), _md5(b"new weights!")]), err
    assert err.splitlines()[-1].startswith(
        "Error: take drive:runs/exp2/best.pt out of its folder: the server answered that it "
        f"is in folders "), err
    assert "taken out" not in err, err
