"""attackpush41: a batch of removals Drive carried out whose every answer was lost (the
connection reset after Drive did them, through every retry), so each item goes alone next
(:class:`drivestage.drive.batches.NoBatches`, ``unanswered``), and the guard refuses before
the first lone removal (a lease lost meanwhile, a Ctrl-C). attackguard40 made a stop say
the removals sent whose answer never came; this path said nothing: "--delete: removing 3
items", the guard's error, and three items deleted for good, unsaid. The real PyDrive2
stack against the emulator (its ``faults.drop``)."""
from __future__ import annotations

import logging

import pytest
from _guarded_runs import Refused, run_with_extras, titles_in
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

#: Guard calls before the first lone removal: the pass's start, then each of the batch
#: request's 8 attempts (7 retries).
BATCH_DONE = 1 + 8
LOST = ("the removal of drive:{0}/a.txt, drive:{0}/b.txt and drive:{0}/c.txt was sent, and "
        "the push stopped before their answer came: they may be gone")


def _said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
            and ("may be gone" in r.getMessage() or r.getMessage().startswith("deleted "))]


@pytest.mark.parametrize("permanent", [True, False], ids=["delete", "trash"])
def test_removals_sent_in_a_batch_whose_answers_were_all_lost_are_said_at_a_stop(
        emulator, drive_env, local_state, tmp_path, caplog, permanent):
    from drivestage.upload_tree import push

    src = run_with_extras(emulator, tmp_path, ("a.txt", "b.txt", "c.txt"))
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        if len(calls) == 2:   # (the removals' batch: every answer lost, Drive did them)
            emulator.faults.drop("POST", r"/batch", times=None)
        if len(calls) > BATCH_DONE:
            raise Refused("the lease is another trainer's now")
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", delete=not permanent,
             delete_permanently=permanent, jobs=1, guard=guard)
    assert titles_in(emulator, "runs/exp", trashed=False) == ["keep.txt"]   # Drive did them
    assert _said(caplog) == [LOST.format("runs/exp")]


def test_with_no_stop_each_is_said_deleted_once(emulator, drive_env, local_state, tmp_path,
                                                caplog):
    """The same lost batch, no guard stopping: the lone deletes' 404s are taken as gone, each
    item said deleted once (pinned: a 404 read so only after an attempt was sent)."""
    from drivestage.upload_tree import push

    src = run_with_extras(emulator, tmp_path, ("a.txt", "b.txt", "c.txt"))
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        if len(calls) == 2:
            emulator.faults.drop("POST", r"/batch", times=None)
    caplog.set_level(logging.INFO, logger="drivestage")
    res = push(str(src), "drive:runs/exp", delete_permanently=True, jobs=1, guard=guard)
    assert sorted(res.deleted) == ["a.txt", "b.txt", "c.txt"]
    assert _said(caplog) == []   # (the "deleted" lines are info: counted by the result)
    assert titles_in(emulator, "runs/exp", trashed=False) == ["keep.txt"]
    assert titles_in(emulator, "runs/exp", trashed=True) == []


def test_trashes_instead_of_refused_deletes_sent_in_a_lost_batch_are_said_at_a_stop(
        emulator, drive_env, local_state, tmp_path, caplog):
    """A shared drive's Content manager: Drive refuses the permanent deletes (403), and they
    go as trashes in a batch of their own, whose every answer is lost once Drive did them;
    the guard refuses the first lone trash."""
    from drivestage.upload_tree import push

    team = emulator.add_shared_drive("Team", role="fileOrganizer")
    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    push(str(src), "drive:shared/Team/exp", jobs=1)
    ids = {n: emulator.add_file(f"exp/{n}", n.encode(), drive_id=team)
           for n in ("a.txt", "b.txt", "c.txt")}
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        if len(calls) == 3:   # (the pass's start, the deletes' batch: now the trashes')
            emulator.faults.drop("POST", r"/batch", times=None)
        if len(calls) > 2 + 8:
            raise Refused("the lease is another trainer's now")
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(Refused):
        push(str(src), "drive:shared/Team/exp", delete_permanently=True, jobs=1, guard=guard)
    assert sorted(n for n, i in ids.items() if emulator.store.get(i)["trashed"]) == \
        ["a.txt", "b.txt", "c.txt"]
    assert _said(caplog) == [LOST.format("shared/Team/exp")]
