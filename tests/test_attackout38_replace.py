"""attackout38: a plain ``push`` (no --delete) that replaces a changed file uploads the new
copy and then deletes the old one (:mod:`drivestage.old_copies`), for good unless
``--use-trash``. An old ``best.pt`` filed before 2020 in ``Archive`` too was deleted from
``Archive`` as well, permanently: the push was never pointed at ``Archive``. attackout38 left
it in both (two of the name in the run folder, said at every push); now (parents39) only the
run folder's link is taken away (files.update ``removeParents``, in place of the delete,
after the same files.get): the new copy has the name alone, the old bytes stay in
``Archive``, one line says so; exit 0. Where Drive refuses that, it stays in both, said so.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP). No sleeps."""
from __future__ import annotations

import hashlib
from collections import Counter

from _cli import run
from _drive_state import live_md5s
from test_outside38_delete import _src

TAKEN = ("WARNING drivestage.drive.store: drive:runs/exp2/best.pt: taken out of "
         "drive:runs/exp2 only, not deleted: it is also in another folder (id {archive}; an "
         "item with two parents, kept from before 2020), where it stays. For good: Drive gives "
         "no item a second parent since 2020 (a shortcut may stand for it in drive:runs/exp2)")


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _world(emulator, tmp_path):
    old = emulator.add_file("runs/exp2/best.pt", b"old weights")
    archive = emulator.add_folder("Archive")
    emulator.store.update_meta(old, {}, add_parents=[archive])
    src = _src(tmp_path)
    (src / "exp2" / "best.pt").write_bytes(b"new weights!")
    return old, archive, src


def test_the_old_copy_of_a_replaced_file_also_in_another_folder_stays_there_only(
        emulator, local_state, drive_env, tmp_path):
    old, archive, src = _world(emulator, tmp_path)

    code, _, err = run("push", str(src), "drive:runs")

    assert code == 0, err
    assert old in emulator.store.files and not emulator.store.get(old)["trashed"], err
    assert emulator.store.get(old)["parents"] == [archive], err
    assert live_md5s(emulator, "Archive") == {"best.pt": [_md5(b"old weights")]}, err
    assert live_md5s(emulator, "runs/exp2")["best.pt"] == [_md5(b"new weights!")], err
    assert TAKEN.format(archive=archive) in err.splitlines(), err
    assert "was not deleted" not in err, err


def _kinds(requests) -> Counter:
    return Counter("files.update removeParents" if "removeParents" in r.query else r.kind
                   for r in requests)


def test_taking_it_out_costs_no_request_more_than_a_deletion(emulator, local_state,
                                                             drive_env, tmp_path):
    """The same push with an old copy also in ``Archive`` and, next, with a plain one (only
    in ``exp2``; a new file beside each time): the same requests, the delete's place taken
    by the update."""
    _, _, src = _world(emulator, tmp_path)
    assert run("push", str(src), "drive:runs")[0] == 0
    mark = len(emulator.requests)
    (src / "exp2" / "best.pt").write_bytes(b"newer weights")
    (src / "exp2" / "log.txt").unlink()
    (src / "exp2" / "log2.txt").write_text("2\n")

    code, _, err = run("push", str(src), "drive:runs")   # (its old copy: only in exp2)

    assert code == 0, err
    first, plain = _kinds(emulator.requests[:mark]), _kinds(emulator.requests[mark:])
    assert first.pop("files.update removeParents") == 1 and plain.pop("files.delete") == 1, \
        (first, plain)
    assert first == plain, (first, plain)


def test_the_next_push_has_nothing_to_say(emulator, local_state, drive_env, tmp_path):
    old, archive, src = _world(emulator, tmp_path)
    assert run("push", str(src), "drive:runs")[0] == 0

    code, _, err = run("push", str(src), "drive:runs")

    assert code == 0, err
    assert "taken out" not in err and "was not deleted" not in err, err
    assert live_md5s(emulator, "Archive") == {"best.pt": [_md5(b"old weights")]}, err


def test_where_drive_refuses_taking_it_out_it_stays_in_both(emulator, local_state,
                                                           drive_env, tmp_path):
    old, archive, src = _world(emulator, tmp_path)
    emulator.faults.inject(None, r"removeParents=", reason="insufficientFilePermissions")

    code, _, err = run("push", str(src), "drive:runs")

    assert code == 0, err
    assert sorted(emulator.store.get(old)["parents"]) == sorted(
        [emulator.find("runs/exp2")["id"], archive]), err
    assert [x for x in err.splitlines() if "was not deleted" in x] == [
        "WARNING drivestage.drive.store: drive:runs/exp2/best.pt was not deleted: it is also "
        "in another folder (an item with two parents, kept from before 2020), and its removal "
        "would take it from there too; Drive refused taking it out of drive:runs/exp2 only "
        "(HTTP 403 insufficientFilePermissions: The user does not have sufficient permissions "
        "for this file). Take it out of drive:runs/exp2 on Drive (it stays in its other "
        "folder) to let it go"], err


def test_an_answer_lost_after_drive_took_it_out_is_asked_again(emulator, local_state,
                                                              drive_env, tmp_path):
    """The update's answer is lost once Drive did it: the retry asks for the same end state
    (a parent it no longer has to remove), and the push goes on."""
    old, archive, src = _world(emulator, tmp_path)
    emulator.faults.drop(None, r"removeParents=", direction="response")

    code, _, err = run("push", str(src), "drive:runs")

    assert code == 0, err
    assert emulator.store.get(old)["parents"] == [archive], err
    assert live_md5s(emulator, "runs/exp2")["best.pt"] == [_md5(b"new weights!")], err
