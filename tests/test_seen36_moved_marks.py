"""seen36: a file moved on Drive (into another folder, or renamed) and its first-seen mark
(:mod:`drivestage.first_seen`).

A mark named the file by its id and bytes alone, so a move kept it: a sidecar first seen a
week ago in one folder, moved by hand (or by ``rclone move``, which sends the file's old
modification time along) into the run folder ahead of its checkpoint, was retired there at
once as a week-old orphan, and the checkpoint, arriving next, stayed unverified for good.
Now the mark also names the folder it was seen in and the file's name there: moved, a file
is first seen anew and waits its day, as a file arriving there does. What the mark says of
the bytes' arrival (``came``) still holds after a move: a run moved into a folder does not
become its most recent by the mark's own write on its date.

Through the real stack (the CLI in-process, PyDrive2 and googleapiclient against the
emulator). No sleeps: a day passes by moving dates and marks back."""
from __future__ import annotations

import time

from _checkpoints import RUN, save
from _cli import ok
from _drive_state import held_since, live_md5s
from _seen_marks import env  # noqa: F401  (a fixture)
from _seen_marks import (DAY, FOLDER, OLD, SPEC, T0, a_day_passes, autosave, id_of,
                         late_sidecar_sent, lone_then_newer, marks_of, old_sidecar_marked,
                         plan_row, send_old)
from drivestage.drive import connect


def _moved(emu, file_id: str, into: str, *, title: str = "") -> None:
    """``file_id`` moved into the folder ``into`` on Drive (renamed ``title``), as ``rclone
    move`` does it server-side: one files.update with add/removeParents, and the file's old
    modification time sent along (rclone's Move: createFileInfo with src.ModTime)."""
    service = connect(api_root=emu.url, token="test-token").service
    rec = emu.store.get(file_id)
    body = {"modifiedDate": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                          time.gmtime(rec["modified"]))}
    if title:
        body["title"] = title
    moves = {} if rec["parents"] == [into] else {
        "addParents": into, "removeParents": ",".join(rec["parents"])}
    service.files().patch(fileId=file_id, body=body, setModifiedDate=True,
                          supportsAllDrives=True, **moves).execute()


def test_a_sidecar_moved_ahead_of_its_checkpoint_waits_a_day_there(emulator, env, tmp_path):
    """An old run's autosave 2 came into Models/old sidecar first (``rclone copy -M``); a
    prune there marked the sidecar and kept it. A week on, the user moves the sidecar into
    Models/logs (the run folder) and sends its checkpoint after it. Before: the moved
    sidecar went at the next prune ("reached the store 7 days ago") and the checkpoint came
    in alone, unverified. Now it waits a day from its move, and the pair stays whole."""
    old_src, theirs, _, side = old_sidecar_marked(emulator, tmp_path)
    a_day_passes(emulator, OLD, by=7 * DAY)

    mine = tmp_path / "mine"
    ours = save(str(mine), autosave(3), 0, T0 + 3, run=RUN, saved=time.time())
    ok("push", str(mine), SPEC)
    logs = id_of(emulator, FOLDER)
    _moved(emulator, side, logs)
    assert emulator.store.get(side)["modified"] < time.time() - 7 * DAY   # (old dates kept)
    t0 = int(time.time())
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = plan_row(out, f"{autosave(2)}.json")
    assert action == "keep" and why.endswith("; retired 24 h after"), out
    [mark] = marks_of(emulator, side)
    assert t0 <= int(mark.split(":")[0]) <= time.time()
    send_old(emulator, old_src / f"{autosave(2)}.pt", logs)
    ok("prune", SPEC, "--keep-last", "1")
    assert live_md5s(emulator, FOLDER) == {**theirs, **ours}


def test_a_renamed_file_is_first_seen_under_its_new_name(emulator, env, tmp_path):
    """An orphan sidecar first seen a week ago (no pass since) is renamed in its folder by
    the user, who is sending the checkpoint of the new name: it waits a day under that name
    (before: retired at once on the week-old mark)."""
    src = tmp_path / "a"
    save(str(src), "epoch_003", 3, T0 + 3, run=RUN)
    ok("push", str(src), SPEC)
    emulator.store.delete(id_of(emulator, f"{FOLDER}/epoch_003.pt"))
    side = id_of(emulator, f"{FOLDER}/epoch_003.json")
    held_since(emulator, side, time.time() - 8 * DAY)   # (marked then: a week-old mark)
    _moved(emulator, side, id_of(emulator, FOLDER), title="epoch_004.json")

    out = ok("prune", SPEC, "--keep-last", "1")

    action, why = plan_row(out, "epoch_004.json")
    assert action == "keep" and why.endswith("; retired 24 h after"), out
    assert "epoch_004.json" in live_md5s(emulator, FOLDER)


def test_a_run_moved_in_is_not_made_the_newest_by_its_marks_write(emulator, env, tmp_path):
    """Run R's autosave 2 reached Models/logs alone three days ago; a prune marked it (the
    mark's write moved its modifiedDate to now), its sidecar came late. Then R's pair is
    moved (as ``rclone move`` does) into Models/runs2, which holds run Q's verified autosave
    3 (two days old). ``--keep-runs 1`` there keeps Q, the run that goes on, and drops R:
    the mark, no longer R's first sighting there, still dates R's bytes."""
    emulator.property_writes_modify = True
    q_run = "20261203-101010-qqqq"
    src = tmp_path / "r"
    r_files, q_files = lone_then_newer(emulator, src, RUN, 3, tmp_path / "q", q_run, 2)
    ok("prune", SPEC, "--keep-last", "1")
    lone = id_of(emulator, f"{FOLDER}/{autosave(2)}.pt")
    assert len(marks_of(emulator, lone)) == 1
    assert emulator.store.get(lone)["modified"] > time.time() - 60   # (the mark's write)
    late_sidecar_sent(src)
    runs2 = emulator.add_folder("Models/runs2")
    for name in q_files:
        _moved(emulator, id_of(emulator, f"{FOLDER}/{name}"), runs2)
    for name in r_files:
        _moved(emulator, id_of(emulator, f"{FOLDER}/{name}"), runs2)

    out = ok("prune", "drive:Models/runs2", "--keep-last", "1", "--keep-runs", "1")

    assert live_md5s(emulator, "Models/runs2") == q_files, out
    assert r_files[f"{autosave(2)}.pt"] != q_files[f"{autosave(3)}.pt"]


def test_a_store_that_lives_on_sees_a_moved_file_anew(emulator, env, tmp_path):
    """A mirror's store lives for hours and asks each file's mark once. A sidecar it marked
    in Models/old, moved into Models/logs meanwhile, was its old mark to it still (cached by
    id and md5): the same store now writes it anew there."""
    from drivestage.remote import open_store
    src = tmp_path / "a"
    save(str(src), "epoch_003", 3, T0 + 3, run=RUN)
    (src / "epoch_003.pt").unlink()
    ok("push", str(src), f"drive:{OLD}")
    side = id_of(emulator, f"{OLD}/epoch_003.json")
    store, _ = open_store(f"drive:{OLD}")
    old, logs_id = store.resolve(OLD), emulator.add_folder(FOLDER)
    [there] = [e for e in store.list(old) if e.id == side]
    first = store.first_seen(there, time.time() - 7 * DAY)
    assert first is not None and len(marks_of(emulator, side)) == 1
    _moved(emulator, side, logs_id)
    [here] = [e for e in store.list(store.resolve(FOLDER)) if e.id == side]
    now = time.time()

    again = store.first_seen(here, now)

    assert again is not None and again.at == int(now) and again.came == first.came
    [mark] = marks_of(emulator, side)
    assert mark.startswith(f"{int(now)}:{int(first.came)}:")
