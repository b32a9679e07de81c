"""edges40: taking an item with two parents out of one folder (files.update
``removeParents``: :meth:`drivestage.drive.store_deletes.Deletes.take_out`, and dedupe's move)
when the answer is lost once Drive did it, and under a server that answers ``parents: []``
while it keeps the item.

The retry asks to remove a parent the item no longer has. What Drive answers there is
documented nowhere (the v2 files.update reference: "comma-separated list of parent IDs to
remove"; no issue or forum thread found shows the answer): the emulator answers 200 with
nothing changed, and ``emulator.absent_parent_status`` makes it an error. Both must end
with the item taken out and the same line said, exit 0.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP). No sleeps."""
from __future__ import annotations

import hashlib

import pytest
from googleapiclient.errors import HttpError

from _cli import run
from _drive_state import live_md5s
from drivestage.drive import connect
from test_attackout38_replace import TAKEN, _world
from test_messages_dedupe import folder, put, trashed
from test_messages_dedupe import run as run_dedupe


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("status", [None, 400, 404])
def test_emulator_removing_a_parent_the_item_lacks(emulator, local_state, drive_env,
                                                   fast_retries, status):
    fid = emulator.add_file("A/x.pt", b"x")
    other = emulator.add_folder("B")
    emulator.absent_parent_status = status
    files = connect(api_root=emulator.url, token="test-token").service.files()

    if status is None:
        res = files.update(fileId=fid, removeParents=other, body={}).execute()
        assert [p["id"] for p in res["parents"]] == [emulator.find("A")["id"]]
        return
    with pytest.raises(HttpError) as err:
        files.update(fileId=fid, removeParents=other, body={}).execute()
    assert err.value.resp.status == status
    assert emulator.store.get(fid)["parents"] == [emulator.find("A")["id"]]
    if status == 404:
        assert f"File not found: {other}.".encode() in err.value.content


@pytest.mark.parametrize("status", [None, 400, 403, 404])
def test_the_retry_after_a_lost_answer_ends_taken_out_whatever_drive_answers_it(
        emulator, local_state, drive_env, tmp_path, status):
    """The update's answer is lost once Drive did it; Drive answers the retry 200 unchanged,
    or an error: the item is out of the run folder and in ``Archive``, said as taken out
    (the push swallowed a 404 as "already gone", said nothing; a 400 failed the push)."""
    old, archive, src = _world(emulator, tmp_path)
    emulator.absent_parent_status = status
    emulator.faults.drop(None, r"removeParents=", direction="response")

    code, _, err = run("push", str(src), "drive:runs")

    assert code == 0, err
    assert emulator.store.get(old)["parents"] == [archive], err
    assert live_md5s(emulator, "runs/exp2")["best.pt"] == [_md5(b"new weights!")], err
    assert [x for x in err.splitlines() if "best.pt" in x and "drive.store" in x] == [
        TAKEN.format(archive=archive)], err
    assert "was not deleted" not in err, err


def test_an_error_on_the_first_attempt_is_not_taken_for_done(emulator, local_state,
                                                             drive_env, tmp_path):
    """Only a retry is read again: a first attempt Drive refuses leaves it in both."""
    old, archive, src = _world(emulator, tmp_path)
    emulator.faults.inject(None, r"removeParents=", status=400)

    code, _, err = run("push", str(src), "drive:runs")

    assert sorted(emulator.store.get(old)["parents"]) == sorted(
        [emulator.find("runs/exp2")["id"], archive]), err
    assert "taken out" not in err, err
    assert code == 1, err


@pytest.mark.parametrize("status", [None, 400, 404])
def test_dedupes_move_retried_after_a_lost_answer_ends_moved(emulator, store, env,
                                                           drive_env, fast_retries, status):
    """dedupe moves an item from the newer folder into the oldest one (addParents and
    removeParents in one request); the answer lost once Drive did it, the retry asks to
    remove a parent it no longer has: the merge completes whatever Drive answers."""
    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "a.pt", b"a")
    moved = put(emulator, store, new, "b.pt", b"b")
    emulator.absent_parent_status = status
    emulator.faults.drop(None, r"removeParents=", direction="response")

    code, _, err = run_dedupe("dedupe", "drive:runs/exp")

    assert code == 0, err
    assert emulator.store.get(moved)["parents"] == [old], err
    assert new in trashed(emulator), err


def _answers_no_folder(emulator, monkeypatch, *, gets_too: bool = False):
    """A server that answers the removeParents update (and, ``gets_too``, every files.get
    after it) with ``parents: []`` and keeps the item where it was: what Drive answers for
    another user's item it put, left in no folder, in its owner's My Drive (attackrm39)."""
    update, render, lying = emulator.store.update_meta, None, []

    def keeps(file_id, meta, *, remove_parents=(), **kw):
        rec = update(file_id, meta, **kw)
        if remove_parents:
            lying.append(file_id)
            return {**rec, "parents": []}
        return rec
    monkeypatch.setattr(emulator.store, "update_meta", keeps)
    if gets_too:
        get = emulator.store.get

        def hides(file_id, *a, **kw):
            rec = get(file_id, *a, **kw)
            return {**rec, "parents": []} if file_id in lying else rec
        monkeypatch.setattr(emulator.store, "get", hides)
    return lying


def test_an_answer_of_no_folder_while_the_item_stays_is_not_said_taken_out(
        emulator, local_state, drive_env, tmp_path, monkeypatch):
    """The update answered "in no folder" (Drive's own answer for an item it placed in its
    owner's My Drive), but the item is still in the run folder: a read after such an answer
    shows it there. The push stops with one line; nothing is said taken out, nothing lost;
    the next push, on an honest server, takes it out and says so once."""
    old, archive, src = _world(emulator, tmp_path)
    honest = emulator.store.update_meta
    lying = _answers_no_folder(emulator, monkeypatch)

    code, _, err = run("push", str(src), "drive:runs")

    exp2 = emulator.find("runs/exp2")["id"]
    assert lying, err
    assert sorted(emulator.store.get(old)["parents"]) == sorted([exp2, archive]), err
    assert "taken out of" not in err, err
    assert err.splitlines()[-1].startswith(
        "Error: take drive:runs/exp2/best.pt out of its folder: the server answered that it "
        "is in no folder, then "), err
    assert code == 1, err
    monkeypatch.setattr(emulator.store, "update_meta", honest)

    code, _, err = run("push", str(src), "drive:runs")

    assert code == 0, err
    assert emulator.store.get(old)["parents"] == [archive], err
    assert live_md5s(emulator, "runs/exp2")["best.pt"] == [_md5(b"new weights!")], err
    assert [x for x in err.splitlines() if "drive.store" in x] == [
        TAKEN.format(archive=archive)], err


def test_a_server_that_lies_in_its_reads_too_loses_nothing(emulator, local_state, drive_env,
                                                          tmp_path, monkeypatch):
    """The files.get after the answer lies as well: nothing in that push tells the lie from
    Drive's own answer, and its line says what the answers said. Nothing is lost: no delete
    of the old copy is sent, its bytes stay in both folders; the next push reads it (the
    same lie: "in no folder") and leaves it, said; one removeParents update a push at most."""
    old, archive, src = _world(emulator, tmp_path)
    lying = _answers_no_folder(emulator, monkeypatch, gets_too=True)
    exp2 = emulator.find("runs/exp2")["id"]

    for _ in range(2):
        mark = len(emulator.requests)
        code, _, err = run("push", str(src), "drive:runs")

        assert code == 0, err
        asked = emulator.requests[mark:]
        assert sum("removeParents" in r.query for r in asked) <= 1, err
        assert sorted(emulator.store.files[old]["parents"]) == sorted([exp2, archive]), err
        assert not emulator.store.files[old]["trashed"], err
        assert old not in [r.path.rsplit("/", 1)[-1] for r in asked
                           if r.kind == "files.delete"], err
        assert _md5(b"new weights!") in live_md5s(emulator, "runs/exp2")["best.pt"], err
    assert lying, err
