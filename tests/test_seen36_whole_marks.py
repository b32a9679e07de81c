"""seen36: first-seen marks (:mod:`drivestage.first_seen`) that outlive their use, and clocks
within a minute of each other.

* A checkpoint's mark was never cleared once its sidecar came (only a sidecar's was: a
  removal, like the write, may move the modifiedDate retention ranks by). Run Q's first
  autosave reached Drive alone and was marked; its sidecar came, and it was Q's newest
  verified checkpoint. A week on, its sidecar is deleted by hand to be sent again: the next
  pass retired the checkpoint at once on its week-old mark. Now a checkpoint whole again
  has its mark written over with one that says only when its bytes came (the ranking's
  date stays), so a later split waits a day.
* A listing that leaves properties out (Drive's may; undocumented): the marks of whole files
  are not seen, so not cleared (left, argued in the notes; see the test).
* Clocks that differ by a minute or less are taken as one: a file goes at most a minute
  early by the other clock, never more (test).

Through the real stack (the CLI in-process, PyDrive2 and googleapiclient against the
emulator). No sleeps: a day passes by moving dates and marks back."""
from __future__ import annotations

import time

import pytest

from _cli import ok
from _drive_state import live_md5s, mark_value
from _seen_marks import env  # noqa: F401  (a fixture)
from _seen_marks import (DAY, FOLDER, SPEC, a_day_passes, autosave, id_of,
                         late_sidecar_sent, lone_then_newer, marks_of, orphan_old_by_its_dates,
                         plan_row, sidecar_whole_again_then_split)
from drivestage import first_seen

Q_RUN = "20261203-101010-qqqq"
R_RUN = "20261201-101010-rrrr"


@pytest.mark.parametrize("touches", [True, False])
def test_a_checkpoint_whole_again_waits_a_day_when_split_later(emulator, env, tmp_path,
                                                                 touches):
    """Q's autosave 2 reached Drive alone two days ago (its sidecar delayed); R's verified
    autosave 3 a day later. A prune marks Q's checkpoint (superseded, a lone autosave). Q's
    sidecar comes: the pair is Q's newest verified checkpoint, kept; the next prune writes
    its mark over (once). A week on, the sidecar is deleted by hand, to be sent again.
    Before: the checkpoint went at once ("reached the store 7 days ago"), a run's newest
    verified state lost. Now it waits a day; the sidecar comes back; both stay."""
    emulator.property_writes_modify = touches
    q_src = tmp_path / "q"
    q_files, r_files = lone_then_newer(emulator, q_src, Q_RUN, 2, tmp_path / "r", R_RUN, 1)
    ckpt = id_of(emulator, f"{FOLDER}/{autosave(2)}.pt")
    out = ok("prune", SPEC, "--keep-last", "1")
    assert plan_row(out, f"{autosave(2)}.pt")[0] == "keep", out
    [marked] = marks_of(emulator, ckpt)
    came = marked.split(":")[1]
    late_sidecar_sent(q_src)
    emulator.clear_requests()
    out = ok("prune", SPEC, "--keep-last", "1")
    assert live_md5s(emulator, FOLDER) == {**q_files, **r_files}, out
    [spent] = marks_of(emulator, ckpt)
    assert spent.split(":")[:2] == ["0", came]   # (its arrival kept: the ranking's date)
    assert emulator.api_calls("properties.insert") == 1
    emulator.clear_requests()
    ok("prune", SPEC, "--keep-last", "1")
    assert emulator.api_calls("properties.insert") == 0   # (once)

    a_day_passes(emulator, FOLDER, by=7 * DAY)
    side = id_of(emulator, f"{FOLDER}/{autosave(2)}.json")
    emulator.store.delete(side)
    out = ok("prune", SPEC, "--keep-last", "1")
    action, why = plan_row(out, f"{autosave(2)}.pt")
    assert action == "keep" and why.endswith("; retired 24 h after"), out
    (q_src / f"{autosave(2)}.pt").unlink(missing_ok=True)
    ok("push", str(q_src), SPEC)
    ok("prune", SPEC, "--keep-last", "1")
    assert live_md5s(emulator, FOLDER) == {**q_files, **r_files}


def test_a_checkpoint_whole_again_still_ranks_by_when_it_came(emulator, env, tmp_path):
    """The mark written over on a whole checkpoint moves its modifiedDate to now (Drive's
    v2 metadata write); ``--keep-runs 1`` still takes R, whose files came later, as the
    most recent run, not Q by that write."""
    emulator.property_writes_modify = True
    q_src = tmp_path / "q"
    q_files, r_files = lone_then_newer(emulator, q_src, Q_RUN, 3, tmp_path / "r", R_RUN, 2)
    ckpt = id_of(emulator, f"{FOLDER}/{autosave(2)}.pt")
    ok("prune", SPEC, "--keep-last", "1")
    late_sidecar_sent(q_src)
    ok("prune", SPEC, "--keep-last", "1")   # (the mark written over: its date now)
    assert emulator.store.get(ckpt)["modified"] > time.time() - 60

    out = ok("prune", SPEC, "--keep-last", "1", "--keep-runs", "1")

    assert live_md5s(emulator, FOLDER) == r_files, out
    assert q_files[f"{autosave(2)}.pt"] != r_files[f"{autosave(3)}.pt"]


# (50 and 70, not 59 and 61: a Date is whole seconds, cut short, and the answer takes its
# time: at 59 s the skew heard read past the minute under load, a fresh-clone run's failure)
@pytest.mark.parametrize("ahead", [50, 70])
def test_clocks_a_minute_apart_age_a_file_at_most_a_minute_early(emulator, env, tmp_path,
                                                                 ahead):
    """This machine's clock runs ``ahead`` seconds ahead of Drive's. An orphan sidecar whose
    mark Drive's clock would make 30 s short of a day: within the tolerance (50 s), the
    machine's clock is taken, and it goes 30 s early; past it (70 s), Drive's too, and it
    waits. A minute, against the day a file waits, and the same race as a checkpoint
    arriving in the last minute before the re-check (orphans' docstring): left as is."""
    side = orphan_old_by_its_dates(emulator, tmp_path)
    emulator.date_offset = -float(ahead)
    drive_now = time.time() - ahead
    seen = mark_value(emulator, side, drive_now - DAY + 30, time.time() - 365 * DAY)
    emulator.set_properties(side, [{"key": first_seen.SEEN_MARK, "value": seen,
                                    "visibility": "PUBLIC"}])
    emulator.store.update(side, created=time.time() - 365 * DAY,
                          modified=time.time() - 365 * DAY)
    ok("ls", "drive:Models")   # (an answer's Date heard first, as a pass's listing does)

    out = ok("prune", SPEC, "--keep-last", "1")

    action = plan_row(out, "epoch_003.json")[0]
    assert action == ("delete" if ahead < 60 else "keep"), out


@pytest.mark.xfail(strict=True, reason="left (seen36 notes): a listing without properties "
                   "shows no mark to clear; reading every whole file's costs a request each "
                   "pass, under a Drive behaviour nothing documents")
def test_a_sidecar_whole_again_under_a_listing_without_properties(emulator, env, tmp_path):
    """seen35's case (a pair whole again, split a week later) where Drive's listing leaves
    properties out (``emulator.list_leaves_out``; undocumented either way): the whole
    sidecar's mark is not seen, so not cleared, and when its checkpoint is deleted by hand
    and sent again the sidecar goes at once on the week-old mark (its checkpoint then comes
    back unverified). Pinned as it is: strict, so a fix shows here."""
    emulator.list_leaves_out = {"properties"}
    sidecar_whole_again_then_split(emulator, tmp_path)
