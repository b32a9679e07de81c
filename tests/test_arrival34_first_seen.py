"""arrival34: retention retires a file by age only once a first-seen mark it wrote is old too.

A client may set a new file's ``createdDate`` and ``modifiedDate`` on Drive (rclone ``-M``,
Drive for desktop; fidelity34). ``rclone copy -M`` of a year-old run folder into a folder a
drivestage mirror prunes sent the small sidecar first, with year-old dates: the next prune
took it for an orphan Drive had held a year and deleted it at once; its checkpoint, arriving
alone with old dates, then went as a lone autosave. A real checkpoint lost.

Now the first pass that finds such a file old by its dates writes a PUBLIC property on it
(``drivestage-seen=<unix seconds>:...``, :mod:`drivestage.first_seen`), and the file goes only
once that mark is a day old as well. Through the real stack (the CLI in-process, PyDrive2 and
googleapiclient against the emulator); no sleeps: the marks and Drive's dates are set in the
emulator as a pass a day ago would have left them. Asserted: the files left on Drive with
their md5s, the plan's lines, the marks on Drive and the requests made.
"""
from __future__ import annotations

import time

import pytest

from _checkpoints import RUN, save
from _cli import ok
from _drive_state import held_since, live_md5s, mark_value
from _seen_marks import env  # noqa: F401  (a fixture)
from _seen_marks import DAY, FOLDER, OLD_RUN, SPEC, T0, marks_of, plan_row, send_old
from drivestage import first_seen, orphans
from drivestage.retention import Candidate, RetentionPolicy, plan
from drivestage.sidecar import Sidecar
from drivestage.store import RemoteEntry


def _id(emu, name: str) -> str:
    return emu.find(f"{FOLDER}/{name}")["id"]


def _mark(emu, name: str) -> list:
    """The values of ``name``'s first-seen marks on Drive."""
    return marks_of(emu, _id(emu, name))


def _props_inserts(emu) -> int:
    return emu.api_calls("properties.insert")


@pytest.mark.parametrize("first", [".json", ".pt"])
def test_an_old_run_copied_in_with_rclone_M_loses_nothing(emulator, env, tmp_path, first):
    """This machine's run has a verified autosave 3 on Drive. ``rclone copy -M`` from machine
    B sends an old run's autosave 2, one half at a time, both halves with year-old dates; a
    prune runs after each half. Before: the sidecar sent first went as an orphan "369 days"
    old, then the checkpoint, alone, as a lone autosave (autosave 3 arrived after it, by its
    dates). Now each waits out a day from its first-seen mark, and both stay."""
    mine = tmp_path / "mine"
    save(str(mine), "autosave_00000003", 0, T0 + 3, run=RUN, saved=time.time())
    ok("push", str(mine), SPEC)
    folder = emulator.find(FOLDER)["id"]
    old = tmp_path / "old"
    theirs = save(str(old), "autosave_00000002", 0, T0 + 2, run=OLD_RUN, saved=T0 + 2)
    halves = ["autosave_00000002" + first,
              "autosave_00000002" + (".pt" if first == ".json" else ".json")]
    send_old(emulator, old / halves[0], folder)
    t0 = int(time.time())
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = plan_row(out, halves[0])
    assert action == "keep", out
    assert why.endswith("; retired 24 h after") and "first seen 20" in why, out
    assert len(_mark(emulator, halves[0])) == 1
    assert t0 <= int(_mark(emulator, halves[0])[0].split(":")[0]) <= time.time()
    send_old(emulator, old / halves[1], folder)
    ok("prune", SPEC, "--keep-last", "1")
    live = live_md5s(emulator, FOLDER)
    for name in halves:
        assert live[name] == theirs[name], live


def test_an_orphan_seen_a_day_ago_and_old_by_its_dates_goes(emulator, env, tmp_path):
    """The mark a pass wrote a day (and a minute) ago, and dates a year old: retired, saying
    how long the store has held it at least (since the later of the two). One seen two hours
    ago waits, saying since when; one old by its mark but new by its dates waits too."""
    src = tmp_path / "a"
    for n in (3, 4, 5):
        save(str(src), f"epoch_{n:03d}", n, T0 + n, run=RUN)
    ok("push", str(src), SPEC)
    for n in (3, 4, 5):
        emulator.store.delete(_id(emulator, f"epoch_{n:03d}.pt"))
    now = time.time()
    held_since(emulator, _id(emulator, "epoch_003.json"), now - DAY - 60)
    emulator.store.update(_id(emulator, "epoch_003.json"), created=now - 365 * DAY,
                          modified=now - 365 * DAY)
    held_since(emulator, _id(emulator, "epoch_004.json"), now - 2 * 3600)
    emulator.store.update(_id(emulator, "epoch_004.json"), created=now - 365 * DAY,
                          modified=now - 365 * DAY)
    held_since(emulator, _id(emulator, "epoch_005.json"), now - 2 * 3600, seen=False)
    emulator.set_properties(_id(emulator, "epoch_005.json"), [
        {"key": first_seen.SEEN_MARK, "visibility": "PUBLIC",
         "value": mark_value(emulator, _id(emulator, "epoch_005.json"), now - 5 * DAY, now - 5 * DAY)}])
    emulator.clear_requests()
    out = ok("prune", SPEC, "--keep-last", "1")
    assert plan_row(out, "epoch_003.json") == (
        "delete", "orphan sidecar: epoch_003.pt is not here, and this sidecar reached the "
        "store 24 h ago"), out
    assert plan_row(out, "epoch_004.json") == (
        "keep", "orphan sidecar: epoch_004.pt is not here; first seen "
        f"{first_seen.when(int(now - 2 * 3600))}; retired 24 h after"), out
    assert plan_row(out, "epoch_005.json")[0] == "keep", out
    assert "epoch_003.json" not in live_md5s(emulator, FOLDER)
    assert {"epoch_004.json", "epoch_005.json"} <= set(live_md5s(emulator, FOLDER))
    assert _props_inserts(emulator) == 0   # marked already: nothing written


@pytest.mark.parametrize("value", ["9999999999", "yesterday", "-5", "1e9", "", "17646 00000"])
def test_a_mark_in_the_future_or_garbage_never_retires_early(emulator, env, tmp_path, value):
    """A planted mark (any editor may set a PUBLIC property) or one written by a clock far
    ahead: the file is kept, and the mark written again with this machine's clock, so it
    goes a day from now, never before (a far-future one does not keep it for ever)."""
    src = tmp_path / "a"
    save(str(src), "epoch_003", 3, T0 + 3, run=RUN)
    ok("push", str(src), SPEC)
    emulator.store.delete(_id(emulator, "epoch_003.pt"))
    emulator.set_properties(_id(emulator, "epoch_003.json"), [
        {"key": first_seen.SEEN_MARK, "value": value, "visibility": "PUBLIC"}])
    then = time.time() - 365 * DAY
    emulator.store.update(_id(emulator, "epoch_003.json"), created=then, modified=then)
    t0 = int(time.time())
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = plan_row(out, "epoch_003.json")
    assert action == "keep" and why.endswith("; retired 24 h after"), out
    assert "epoch_003.json" in live_md5s(emulator, FOLDER)
    [mark] = _mark(emulator, "epoch_003.json")
    assert t0 <= int(mark.split(":")[0]) <= time.time()


@pytest.mark.parametrize("touches", [True, False])
@pytest.mark.parametrize("leaves_out", [False, True])
def test_one_mark_written_per_new_candidate_and_none_on_later_passes(emulator, env, tmp_path,
                                                                      leaves_out, touches):
    """Two orphans old by their dates: the first prune writes one mark each (after one read
    of each one's properties, which the listing did not show), the second writes none and,
    where the listing shows the marks, reads none; a dry run writes none. With a listing
    that leaves properties out (Drive v2 may), the second pass reads each candidate's own
    properties once and still writes none (where the mark's write moved their modifiedDate
    to its time, ``touches``, they are not old by their dates then: nothing is asked)."""
    emulator.property_writes_modify = touches
    if leaves_out:
        emulator.list_leaves_out = {"properties"}
    src = tmp_path / "a"
    for n in (3, 4):
        save(str(src), f"epoch_{n:03d}", n, T0 + n, run=RUN)
    ok("push", str(src), SPEC)
    then = time.time() - 365 * DAY
    for n in (3, 4):
        emulator.store.delete(_id(emulator, f"epoch_{n:03d}.pt"))
        emulator.store.update(_id(emulator, f"epoch_{n:03d}.json"), created=then, modified=then)

    def props_reads() -> int:
        return sum(1 for r in emulator.requests if r.kind == "files.get"
                   and "properties" in str(r.query.get("fields", "")))

    emulator.clear_requests()
    dry = ok("prune", SPEC, "--keep-last", "1", "--dry-run")
    assert (_props_inserts(emulator), props_reads()) == (0, 2), dry
    assert _mark(emulator, "epoch_003.json") == []
    emulator.clear_requests()
    ok("prune", SPEC, "--keep-last", "1")
    assert (_props_inserts(emulator), props_reads()) == (2, 2)
    emulator.clear_requests()
    out = ok("prune", SPEC, "--keep-last", "1")
    assert (_props_inserts(emulator), props_reads()) == (0, 2 if leaves_out and not touches
                                                          else 0), out
    assert {"epoch_003.json", "epoch_004.json"} <= set(live_md5s(emulator, FOLDER))


def test_an_orphan_whose_mark_cannot_be_kept_stays():
    """Where no mark can be written (no writer access: nor could it be deleted; a store
    that keeps none), an orphan old by its dates is kept, saying why."""
    policy = RetentionPolicy(keep_last=1)
    entry = RemoteEntry("j", "epoch_003.json", False, 100, "m" * 32, modified=1.0, created=1.0)
    orphan = orphans.Orphan(entry, "epoch_003.pt", Sidecar(md5="a" * 32, size=10, epoch=3))
    files = [Candidate(entry.name, 100, entry.modified, id="j")]
    for seen in (None, lambda e: None):
        out = orphans.retire(plan(files, policy), files, [], [orphan], policy,
                             now=1e9, seen=seen)
        [d] = [d for d in out if d.id == "j"]
        assert d.keep and d.reason == ("orphan sidecar: epoch_003.pt is not here; its "
                                       "first-seen mark could not be written on the store, so "
                                       "it is kept"), d


@pytest.mark.parametrize("reason", ["insufficientFilePermissions", "propertyCountLimitExceeded"])
def test_an_orphan_drive_will_not_mark_is_kept(emulator, env, tmp_path, reason):
    """Drive refuses the mark's properties.insert (403: no writer access, nor then could it
    be deleted; or the file holds 30 public properties already): the orphan, old by its dates,
    is kept, the plan saying why, and prune exits 0."""
    src = tmp_path / "a"
    save(str(src), "epoch_003", 3, T0 + 3, run=RUN)
    ok("push", str(src), SPEC)
    emulator.store.delete(_id(emulator, "epoch_003.pt"))
    then = time.time() - 365 * DAY
    emulator.store.update(_id(emulator, "epoch_003.json"), created=then, modified=then)
    emulator.faults.inject("POST", r"/properties(\?|$)", status=403, reason=reason)
    out = ok("prune", SPEC, "--keep-last", "1")
    assert plan_row(out, "epoch_003.json") == (
        "keep", "orphan sidecar: epoch_003.pt is not here; its first-seen mark could not be "
        "written on the store, so it is kept"), out
    assert "epoch_003.json" in live_md5s(emulator, FOLDER)
    assert _mark(emulator, "epoch_003.json") == []
