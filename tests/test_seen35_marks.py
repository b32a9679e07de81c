"""seen35: the first-seen mark (:mod:`drivestage.first_seen`) under what Drive does to it.

* A mark's own write may move the file's ``modifiedDate`` to its time (a v2 metadata write
  sets it to now unless told otherwise; ``properties.insert`` takes no such parameter and its
  reference says nothing). Retention took a file's arrival as the later of its dates, so a
  lone autosave marked today "arrived" after the verified autosave that supersedes it and
  was kept for good. Now the mark records the arrival its pass saw (``came``) and the order
  of arrivals takes the earlier: it goes a day after its mark, whether or not Drive moved
  its date (``emulator.property_writes_modify``, both settings).
* ``files.copy`` carries custom properties to the copy. A sidecar marked in one folder and
  copied (server-side, old dates: ``rclone copy -M``) into a folder that drivestage prunes
  brought its week-old mark along and went the moment it arrived, before its checkpoint.
  Now a mark names the file it was written on (its id and md5): a copy's is written again.
* A mark of the form written before (bare seconds) names no file: taken as none.

Through the real stack (the CLI in-process, PyDrive2 and googleapiclient against the
emulator). No sleeps: a day passes by moving every date in the folder, and every mark,
back by a day, as a pass a day ago would have left them."""
from __future__ import annotations

import time

import pytest

from _checkpoints import RUN, save
from _cli import ok
from _drive_state import held_since, live_md5s, mark_value
from _seen_marks import env  # noqa: F401  (a fixture)
from _seen_marks import (DAY, FOLDER, OLD, OLD_RUN, SPEC, T0, YEAR_AGO, a_day_passes, autosave,
                         id_of, late_sidecar_sent, lone_then_newer, marks_of, old_sidecar_marked,
                         orphan_old_by_its_dates, plan_row, send_old,
                         sidecar_whole_again_then_split)
from drivestage import first_seen
from drivestage.drive import connect

def _lone(tmp_path, n: int) -> list:
    """Autosave ``n``'s checkpoint on Drive without its sidecar (a push killed between the
    two uploads leaves it so). Returns its md5s."""
    src = tmp_path / f"cut{n}"
    files = save(str(src), autosave(n), 0, T0 + n, run=RUN, saved=T0 + n)
    (src / f"{autosave(n)}.json").unlink()
    ok("push", str(src), SPEC)
    return files[f"{autosave(n)}.pt"]


@pytest.mark.parametrize("leaves_out", [False, True])
@pytest.mark.parametrize("touches", [True, False])
def test_a_lone_autosave_goes_a_day_after_its_mark_whether_or_not_the_mark_moved_its_date(
        emulator, env, tmp_path, touches, leaves_out):
    """A lone autosave 2, two days old, and the verified autosave 3 that reached Drive after
    it. The first prune marks it and keeps it; a day later the next retires it. Before: where
    the mark's write moved its modifiedDate (``touches``), it had "arrived" after autosave 3,
    so nothing superseded it: kept for good, for a listing with properties or without."""
    emulator.property_writes_modify = touches
    emulator.list_leaves_out = {"properties"} if leaves_out else set()
    lone = _lone(tmp_path, 2)
    held_since(emulator, id_of(emulator, f"{FOLDER}/{autosave(2)}.pt"), time.time() - 2 * DAY,
               seen=False)
    src = tmp_path / "m3"
    newer = save(str(src), autosave(3), 0, T0 + 3, run=RUN, saved=time.time())
    ok("push", str(src), SPEC, "--keep-last", "1")
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = plan_row(out, f"{autosave(2)}.pt")
    assert action == "keep" and why.startswith(
        "autosave without a sidecar on the store: first seen 20"), out
    lone_id = id_of(emulator, f"{FOLDER}/{autosave(2)}.pt")
    moved = emulator.store.get(lone_id)["modified"] > time.time() - 60
    assert moved == touches
    a_day_passes(emulator, FOLDER)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert plan_row(out, f"{autosave(2)}.pt") == (
        "delete", f"lone autosave: no sidecar on the store, {autosave(3)}.pt is further on and "
        "verified, and this file reached the store 25 h ago"), out
    assert live_md5s(emulator, FOLDER) == newer
    assert lone != newer[f"{autosave(3)}.pt"]


def _copy_old(emu, file_id: str, folder_id: str) -> str:
    """A server-side copy of ``file_id`` into ``folder_id`` (a user's "Make a copy" moved
    there, rclone's server-side copy with ``-M``: the original's dates sent along)."""
    service = connect(api_root=emu.url, token="test-token").service
    return service.files().copy(
        fileId=file_id, body={"parents": [{"id": folder_id}], "createdDate": YEAR_AGO,
                              "modifiedDate": YEAR_AGO}, supportsAllDrives=True).execute()["id"]


def test_a_copy_does_not_take_the_originals_mark_for_its_own(emulator, env, tmp_path):
    """An old run's autosave 2 came into Models/old as ``rclone copy -M`` sends it, sidecar
    first: a prune there marked the sidecar (and kept it) before its checkpoint came. A week
    on, both are copied on Drive into Models/logs, sidecar first, with their old dates, and
    Drive's copy carries the mark. Before: the copied sidecar, an orphan there, went at
    the next prune ("reached the store 7 days ago"), and its checkpoint came in alone. Now
    the copy's mark is not its own: written again, and the pair stays whole."""
    old_src, theirs, old_folder, side = old_sidecar_marked(emulator, tmp_path)
    ckpt = send_old(emulator, old_src / f"{autosave(2)}.pt", old_folder)
    a_day_passes(emulator, OLD, by=7 * DAY)

    mine = tmp_path / "mine"
    save(str(mine), autosave(3), 0, T0 + 3, run=RUN, saved=time.time())
    ok("push", str(mine), SPEC)
    logs = id_of(emulator, FOLDER)
    copied = _copy_old(emulator, side, logs)
    assert marks_of(emulator, copied) == marks_of(emulator, side)   # Drive's copy carries it
    t0 = int(time.time())
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = plan_row(out, f"{autosave(2)}.json")
    assert action == "keep" and why.endswith("; retired 24 h after"), out
    [mark] = marks_of(emulator, copied)
    assert t0 <= int(mark.split(":")[0]) <= time.time()
    _copy_old(emulator, ckpt, logs)
    ok("prune", SPEC, "--keep-last", "1")
    live = live_md5s(emulator, FOLDER)
    for name in (f"{autosave(2)}.json", f"{autosave(2)}.pt"):
        assert live[name] == theirs[name], live


def test_a_mark_of_the_old_form_is_no_mark(emulator, env, tmp_path):
    """A sidecar old by its dates whose mark is a bare number of seconds a week ago (the form
    written before: it names no file, so a copy's reads as the file's own): kept, and the
    mark written again in the new form. Before: retired at once."""
    src = tmp_path / "a"
    save(str(src), "epoch_003", 3, T0 + 3, run=RUN)
    ok("push", str(src), SPEC)
    emulator.store.delete(id_of(emulator, f"{FOLDER}/epoch_003.pt"))
    side = id_of(emulator, f"{FOLDER}/epoch_003.json")
    week_ago = int(time.time() - 7 * DAY)
    emulator.set_properties(side, [{"key": first_seen.SEEN_MARK, "value": str(week_ago),
                                    "visibility": "PUBLIC"}])
    emulator.store.update(side, created=time.time() - 365 * DAY,
                          modified=time.time() - 365 * DAY)
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = plan_row(out, "epoch_003.json")
    assert action == "keep" and why.endswith("; retired 24 h after"), out
    assert "epoch_003.json" in live_md5s(emulator, FOLDER)
    [mark] = marks_of(emulator, side)
    assert mark.count(":") == 3 and int(mark.split(":")[0]) > week_ago   # (seen36: 4 parts)


def test_a_pair_whole_again_loses_its_mark_and_a_later_split_waits_a_day(emulator, env,
                                                                          tmp_path):
    """An old run's autosave 2 comes in as ``rclone copy -M`` sends it, sidecar first: the
    prune then marks the sidecar. Once its checkpoint is there, the next prune removes the
    mark (one properties.delete, and none at the prune after). A week on, the checkpoint is
    deleted by hand and sent again: the sidecar, an orphan once more, waits a day from now.
    Before: the week-old mark stayed, and the sidecar went at once ("reached the store 7 days
    ago"), its checkpoint coming back alone."""
    def whole(side: str) -> None:   # (the mark removed, once)
        assert marks_of(emulator, side) == []
        assert emulator.api_calls("properties.delete") == 1
        emulator.clear_requests()
        ok("prune", SPEC, "--keep-last", "1")
        assert emulator.api_calls("properties.delete") == 0

    sidecar_whole_again_then_split(emulator, tmp_path, whole)


def test_a_marked_autosave_whose_sidecar_came_late_does_not_make_its_run_the_newest(
        emulator, env, tmp_path):
    """Run R's autosave 2 reached Drive alone three days ago; run Q's verified autosave 3
    two days ago. A prune marks the lone one (Drive moves its modifiedDate to now); then its
    sidecar comes. With ``--keep-runs 1`` the most recent run is Q. Before: R's newest file
    was dated by the mark's write, so R was kept and Q, the run that goes on, dropped whole."""
    emulator.property_writes_modify = True
    q_run = "20261203-101010-qqqq"
    src = tmp_path / "r"
    r_files, q_files = lone_then_newer(emulator, src, RUN, 3, tmp_path / "q", q_run, 2)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert plan_row(out, f"{autosave(2)}.pt")[0] == "keep", out
    assert len(marks_of(emulator, id_of(emulator, f"{FOLDER}/{autosave(2)}.pt"))) == 1
    late_sidecar_sent(src)
    out = ok("prune", SPEC, "--keep-last", "1", "--keep-runs", "1")
    assert live_md5s(emulator, FOLDER) == q_files, out
    assert r_files[f"{autosave(2)}.pt"] != q_files[f"{autosave(3)}.pt"]


def test_a_machine_whose_clock_runs_ahead_ages_nothing_early(emulator, env, tmp_path):
    """This machine's clock runs 20 h ahead of Drive's (every answer's Date says so). An
    orphan sidecar, a year old by its dates, first seen 5 h ago by Drive's clock (by a
    machine whose clock is right). Before: 25 h by this machine's clock: retired, its
    checkpoint maybe 5 h into its upload. Now the age is by the earlier clock: kept, and the
    mark left as it is."""
    side = orphan_old_by_its_dates(emulator, tmp_path)
    emulator.date_offset = -20 * 3600.0
    drive_now = time.time() - 20 * 3600
    seen = mark_value(emulator, side, drive_now - 5 * 3600, time.time() - 365 * DAY)
    emulator.set_properties(side, [{"key": first_seen.SEEN_MARK, "value": seen,
                                    "visibility": "PUBLIC"}])
    emulator.store.update(side, created=time.time() - 365 * DAY,
                          modified=time.time() - 365 * DAY)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert plan_row(out, "epoch_003.json") == (
        "keep", "orphan sidecar: epoch_003.pt is not here; first seen "
        f"{first_seen.when(int(drive_now - 5 * 3600))}; retired 24 h after"), out
    assert marks_of(emulator, side) == [seen]


def test_a_machine_whose_clock_runs_behind_writes_drives_time(emulator, env, tmp_path):
    """This machine's clock runs a year behind Drive's (a dead RTC battery). The mark it
    writes on an orphan says Drive's time, not its own: before, it said a year ago, and every
    machine whose clock is right retired the file at its next pass."""
    side = orphan_old_by_its_dates(emulator, tmp_path)
    emulator.date_offset = 365 * DAY
    drive_now = time.time() + 365 * DAY
    out = ok("prune", SPEC, "--keep-last", "1")
    assert plan_row(out, "epoch_003.json")[0] == "keep", out
    [mark] = marks_of(emulator, side)
    assert drive_now - 120 <= int(mark.split(":")[0]) <= time.time() + 365 * DAY


def test_a_mark_drive_will_not_clear_fails_nothing(emulator, env, tmp_path):
    """The sidecar's checkpoint is back, but Drive answers every properties.delete 503 (past
    the retries): the prune exits 0 with its plan done, the mark left (cleared by a later
    pass). A mark left costs nothing now."""
    old_src = tmp_path / "old"
    theirs = save(str(old_src), autosave(2), 0, T0 + 2, run=OLD_RUN, saved=T0 + 2)
    logs = emulator.add_folder(FOLDER)
    side = send_old(emulator, old_src / f"{autosave(2)}.json", logs)
    ok("prune", SPEC, "--keep-last", "1")
    send_old(emulator, old_src / f"{autosave(2)}.pt", logs)
    emulator.faults.inject("DELETE", r"/properties/", status=503, times=None)
    ok("prune", SPEC, "--keep-last", "1")
    assert len(marks_of(emulator, side)) == 1
    assert live_md5s(emulator, FOLDER) == theirs
    emulator.faults.clear()
    ok("prune", SPEC, "--keep-last", "1")
    assert marks_of(emulator, side) == []
