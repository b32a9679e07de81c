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
from drivestage import first_seen
from drivestage.drive import connect

FOLDER = "Models/logs"
SPEC = f"drive:{FOLDER}"
OLD = "Models/old"
YEAR_AGO = "2025-12-01T10:00:00.000Z"
T0 = 1764600000.0
DAY = 24 * 3600
OLD_RUN = "20251130-101010-bbbb"


@pytest.fixture
def env(local_state, drive_env, fast_retries):
    return local_state


def _name(n: int) -> str:
    return f"autosave_{n:08d}"


def _id(emu, path: str) -> str:
    return emu.find(path)["id"]


def _row(out: str, name: str) -> tuple[str, str]:
    """The action and the reason of ``name``'s line of the plan's table."""
    rows = [line for line in out.splitlines() if f"  {name}  " in line]
    assert len(rows) == 1, out
    return rows[0].split()[0], rows[0].split(f"  {name}  ", 1)[1].strip()


def _marks(emu, file_id: str) -> list:
    return [p["value"] for p in emu.properties_of(file_id)
            if p["key"] == first_seen.SEEN_MARK and p["visibility"] == "PUBLIC"]


def _a_day_passes(emu, folder: str, by: float = DAY + 3600) -> None:
    """Every file in ``folder`` arrived ``by`` seconds earlier than it did, and every
    first-seen mark there was written as much earlier (its times, whatever its form)."""
    top = emu.find(folder)["id"]
    for f in emu.files():
        if not any(p["id"] == top for p in f.get("parents") or []):
            continue
        rec = emu.store.get(f["id"])
        for value in _marks(emu, f["id"]):   # (first: the seeding API dates it now)
            parts = value.split(":")
            moved = [str(int(p) - int(by)) if int(p) else p   # (0: no sighting, seen36)
                     for p in parts[:2] if p.isdigit()]
            emu.set_properties(f["id"], [{"key": first_seen.SEEN_MARK, "visibility": "PUBLIC",
                                          "value": ":".join(moved + parts[len(moved):])}])
        emu.store.update(f["id"], created=rec["created"] - by, modified=rec["modified"] - by)


def _lone(tmp_path, n: int) -> list:
    """Autosave ``n``'s checkpoint on Drive without its sidecar (a push killed between the
    two uploads leaves it so). Returns its md5s."""
    src = tmp_path / f"cut{n}"
    files = save(str(src), _name(n), 0, T0 + n, run=RUN, saved=T0 + n)
    (src / f"{_name(n)}.json").unlink()
    ok("push", str(src), SPEC)
    return files[f"{_name(n)}.pt"]


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
    held_since(emulator, _id(emulator, f"{FOLDER}/{_name(2)}.pt"), time.time() - 2 * DAY,
               seen=False)
    src = tmp_path / "m3"
    newer = save(str(src), _name(3), 0, T0 + 3, run=RUN, saved=time.time())
    ok("push", str(src), SPEC, "--keep-last", "1")
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = _row(out, f"{_name(2)}.pt")
    assert action == "keep" and why.startswith(
        "autosave without a sidecar on the store: first seen 20"), out
    lone_id = _id(emulator, f"{FOLDER}/{_name(2)}.pt")
    moved = emulator.store.get(lone_id)["modified"] > time.time() - 60
    assert moved == touches
    _a_day_passes(emulator, FOLDER)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, f"{_name(2)}.pt") == (
        "delete", f"lone autosave: no sidecar on the store, {_name(3)}.pt is further on and "
        "verified, and this file reached the store 25 h ago"), out
    assert live_md5s(emulator, FOLDER) == newer
    assert lone != newer[f"{_name(3)}.pt"]


def _send_old(emu, path, folder_id: str) -> str:
    """``path`` sent into ``folder_id`` as ``rclone copy -M`` sends a file made a year ago."""
    from googleapiclient.http import MediaFileUpload
    service = connect(api_root=emu.url, token="test-token").service
    return service.files().insert(
        body={"title": path.name, "parents": [{"id": folder_id}], "createdDate": YEAR_AGO,
              "modifiedDate": YEAR_AGO},
        media_body=MediaFileUpload(str(path), mimetype="application/octet-stream"),
        supportsAllDrives=True).execute()["id"]


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
    old_src = tmp_path / "old"
    theirs = save(str(old_src), _name(2), 0, T0 + 2, run=OLD_RUN, saved=T0 + 2)
    old_folder = emulator.add_folder(OLD)
    side = _send_old(emulator, old_src / f"{_name(2)}.json", old_folder)
    out = ok("prune", f"drive:{OLD}", "--keep-last", "1")
    assert _row(out, f"{_name(2)}.json")[0] == "keep", out
    assert len(_marks(emulator, side)) == 1
    ckpt = _send_old(emulator, old_src / f"{_name(2)}.pt", old_folder)
    _a_day_passes(emulator, OLD, by=7 * DAY)

    mine = tmp_path / "mine"
    save(str(mine), _name(3), 0, T0 + 3, run=RUN, saved=time.time())
    ok("push", str(mine), SPEC)
    logs = _id(emulator, FOLDER)
    copied = _copy_old(emulator, side, logs)
    assert _marks(emulator, copied) == _marks(emulator, side)   # Drive's copy carries it
    t0 = int(time.time())
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = _row(out, f"{_name(2)}.json")
    assert action == "keep" and why.endswith("; retired 24 h after"), out
    [mark] = _marks(emulator, copied)
    assert t0 <= int(mark.split(":")[0]) <= time.time()
    _copy_old(emulator, ckpt, logs)
    ok("prune", SPEC, "--keep-last", "1")
    live = live_md5s(emulator, FOLDER)
    for name in (f"{_name(2)}.json", f"{_name(2)}.pt"):
        assert live[name] == theirs[name], live


def test_a_mark_of_the_old_form_is_no_mark(emulator, env, tmp_path):
    """A sidecar old by its dates whose mark is a bare number of seconds a week ago (the form
    written before: it names no file, so a copy's reads as the file's own): kept, and the
    mark written again in the new form. Before: retired at once."""
    src = tmp_path / "a"
    save(str(src), "epoch_003", 3, T0 + 3, run=RUN)
    ok("push", str(src), SPEC)
    emulator.store.delete(_id(emulator, f"{FOLDER}/epoch_003.pt"))
    side = _id(emulator, f"{FOLDER}/epoch_003.json")
    week_ago = int(time.time() - 7 * DAY)
    emulator.set_properties(side, [{"key": first_seen.SEEN_MARK, "value": str(week_ago),
                                    "visibility": "PUBLIC"}])
    emulator.store.update(side, created=time.time() - 365 * DAY,
                          modified=time.time() - 365 * DAY)
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = _row(out, "epoch_003.json")
    assert action == "keep" and why.endswith("; retired 24 h after"), out
    assert "epoch_003.json" in live_md5s(emulator, FOLDER)
    [mark] = _marks(emulator, side)
    assert mark.count(":") == 3 and int(mark.split(":")[0]) > week_ago   # (seen36: 4 parts)


def test_a_pair_whole_again_loses_its_mark_and_a_later_split_waits_a_day(emulator, env,
                                                                          tmp_path):
    """An old run's autosave 2 comes in as ``rclone copy -M`` sends it, sidecar first: the
    prune then marks the sidecar. Once its checkpoint is there, the next prune removes the
    mark (one properties.delete, and none at the prune after). A week on, the checkpoint is
    deleted by hand and sent again: the sidecar, an orphan once more, waits a day from now.
    Before: the week-old mark stayed, and the sidecar went at once ("reached the store 7 days
    ago"), its checkpoint coming back alone."""
    old_src = tmp_path / "old"
    theirs = save(str(old_src), _name(2), 0, T0 + 2, run=OLD_RUN, saved=T0 + 2)
    logs = emulator.add_folder(FOLDER)
    side = _send_old(emulator, old_src / f"{_name(2)}.json", logs)
    ok("prune", SPEC, "--keep-last", "1")
    assert len(_marks(emulator, side)) == 1
    ckpt = _send_old(emulator, old_src / f"{_name(2)}.pt", logs)
    emulator.clear_requests()
    ok("prune", SPEC, "--keep-last", "1")
    assert _marks(emulator, side) == []
    assert emulator.api_calls("properties.delete") == 1
    emulator.clear_requests()
    ok("prune", SPEC, "--keep-last", "1")
    assert emulator.api_calls("properties.delete") == 0
    _a_day_passes(emulator, FOLDER, by=7 * DAY)
    emulator.store.delete(ckpt)
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = _row(out, f"{_name(2)}.json")
    assert action == "keep" and why.endswith("; retired 24 h after"), out
    _send_old(emulator, old_src / f"{_name(2)}.pt", logs)
    ok("prune", SPEC, "--keep-last", "1")
    assert live_md5s(emulator, FOLDER) == theirs


def test_a_marked_autosave_whose_sidecar_came_late_does_not_make_its_run_the_newest(
        emulator, env, tmp_path):
    """Run R's autosave 2 reached Drive alone three days ago; run Q's verified autosave 3
    two days ago. A prune marks the lone one (Drive moves its modifiedDate to now); then its
    sidecar comes. With ``--keep-runs 1`` the most recent run is Q. Before: R's newest file
    was dated by the mark's write, so R was kept and Q, the run that goes on, dropped whole."""
    emulator.property_writes_modify = True
    q_run = "20261203-101010-qqqq"
    src = tmp_path / "r"
    r_files = save(str(src), _name(2), 0, T0 + 2, run=RUN, saved=time.time() - 3 * DAY)
    (src / f"{_name(2)}.json").rename(tmp_path / "late.json")
    ok("push", str(src), SPEC)
    held_since(emulator, _id(emulator, f"{FOLDER}/{_name(2)}.pt"), time.time() - 3 * DAY,
               seen=False)
    q_src = tmp_path / "q"
    q_files = save(str(q_src), _name(3), 0, T0 + 3, run=q_run, saved=time.time() - 2 * DAY)
    ok("push", str(q_src), SPEC)
    for name in q_files:
        held_since(emulator, _id(emulator, f"{FOLDER}/{name}"), time.time() - 2 * DAY,
                   seen=False)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, f"{_name(2)}.pt")[0] == "keep", out
    assert len(_marks(emulator, _id(emulator, f"{FOLDER}/{_name(2)}.pt"))) == 1
    (tmp_path / "late.json").rename(src / f"{_name(2)}.json")
    (src / f"{_name(2)}.pt").unlink()
    ok("push", str(src), SPEC)
    out = ok("prune", SPEC, "--keep-last", "1", "--keep-runs", "1")
    assert live_md5s(emulator, FOLDER) == q_files, out
    assert r_files[f"{_name(2)}.pt"] != q_files[f"{_name(3)}.pt"]


def _orphan_old_by_its_dates(emulator, tmp_path) -> str:
    """epoch_003.json on Drive without its checkpoint, its dates a year old. Returns its id."""
    src = tmp_path / "a"
    save(str(src), "epoch_003", 3, T0 + 3, run=RUN)
    ok("push", str(src), SPEC)
    emulator.store.delete(_id(emulator, f"{FOLDER}/epoch_003.pt"))
    side = _id(emulator, f"{FOLDER}/epoch_003.json")
    emulator.store.update(side, created=time.time() - 365 * DAY,
                          modified=time.time() - 365 * DAY)
    return side


def test_a_machine_whose_clock_runs_ahead_ages_nothing_early(emulator, env, tmp_path):
    """This machine's clock runs 20 h ahead of Drive's (every answer's Date says so). An
    orphan sidecar, a year old by its dates, first seen 5 h ago by Drive's clock (by a
    machine whose clock is right). Before: 25 h by this machine's clock: retired, its
    checkpoint maybe 5 h into its upload. Now the age is by the earlier clock: kept, and the
    mark left as it is."""
    side = _orphan_old_by_its_dates(emulator, tmp_path)
    emulator.date_offset = -20 * 3600.0
    drive_now = time.time() - 20 * 3600
    seen = mark_value(emulator, side, drive_now - 5 * 3600, time.time() - 365 * DAY)
    emulator.set_properties(side, [{"key": first_seen.SEEN_MARK, "value": seen,
                                    "visibility": "PUBLIC"}])
    emulator.store.update(side, created=time.time() - 365 * DAY,
                          modified=time.time() - 365 * DAY)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, "epoch_003.json") == (
        "keep", "orphan sidecar: epoch_003.pt is not here; first seen "
        f"{first_seen.when(int(drive_now - 5 * 3600))}; retired 24 h after"), out
    assert _marks(emulator, side) == [seen]


def test_a_machine_whose_clock_runs_behind_writes_drives_time(emulator, env, tmp_path):
    """This machine's clock runs a year behind Drive's (a dead RTC battery). The mark it
    writes on an orphan says Drive's time, not its own: before, it said a year ago, and every
    machine whose clock is right retired the file at its next pass."""
    side = _orphan_old_by_its_dates(emulator, tmp_path)
    emulator.date_offset = 365 * DAY
    drive_now = time.time() + 365 * DAY
    out = ok("prune", SPEC, "--keep-last", "1")
    assert _row(out, "epoch_003.json")[0] == "keep", out
    [mark] = _marks(emulator, side)
    assert drive_now - 120 <= int(mark.split(":")[0]) <= time.time() + 365 * DAY


def test_a_mark_drive_will_not_clear_fails_nothing(emulator, env, tmp_path):
    """The sidecar's checkpoint is back, but Drive answers every properties.delete 503 (past
    the retries): the prune exits 0 with its plan done, the mark left (cleared by a later
    pass). A mark left costs nothing now."""
    old_src = tmp_path / "old"
    theirs = save(str(old_src), _name(2), 0, T0 + 2, run=OLD_RUN, saved=T0 + 2)
    logs = emulator.add_folder(FOLDER)
    side = _send_old(emulator, old_src / f"{_name(2)}.json", logs)
    ok("prune", SPEC, "--keep-last", "1")
    _send_old(emulator, old_src / f"{_name(2)}.pt", logs)
    emulator.faults.inject("DELETE", r"/properties/", status=503, times=None)
    ok("prune", SPEC, "--keep-last", "1")
    assert len(_marks(emulator, side)) == 1
    assert live_md5s(emulator, FOLDER) == theirs
    emulator.faults.clear()
    ok("prune", SPEC, "--keep-last", "1")
    assert _marks(emulator, side) == []
