"""attackguard40: a pass of removals whose guard refuses the retry of a request whose
answer was lost (the connection reset once Drive had done it). guards40 made the pass say
what Drive answered done before the guard refused; the removals sent whose answer never
came were said nothing at all, though Drive had carried them out: the user read
"--delete: removing 3 items", then the guard's error, and three items had gone unsaid.
Now one line names them as sent, their answer lost: they may be gone. The real PyDrive2
stack against the emulator; the guard refuses by the emulator's request log."""
from __future__ import annotations

import logging
import re

import pytest
from _guarded_runs import REMOVALS, Refused, run_with_extras, titles_in


def _refusing_after_one_removal(emulator):
    start: list[int] = []

    def guard() -> None:
        if not start:
            start.append(len(emulator.requests))
        if any(r.kind in REMOVALS for r in emulator.requests[start[0]:]):
            raise Refused("the lease is another trainer's now")
    return guard


def _trashed(emulator, folder: str) -> list[str]:
    return titles_in(emulator, folder, trashed=True)


def _seed(emulator, tmp_path, names):
    return run_with_extras(emulator, tmp_path, names)


@pytest.mark.parametrize("stop", [Refused, KeyboardInterrupt], ids=["refused", "ctrl-c"])
@pytest.mark.parametrize("batches", [True, False], ids=["batch", "alone"])
def test_removals_whose_answer_was_lost_are_said_when_the_guard_refuses_the_retry(
        emulator, drive_env, local_state, tmp_path, caplog, batches, stop):
    from drivestage.upload_tree import push

    names = ("a.txt", "b.txt", "c.txt") if batches else ("a.txt",)
    src = _seed(emulator, tmp_path, names)
    refuse = _refusing_after_one_removal(emulator)
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        if len(calls) == 2:   # (the pass's start, then the first request that removes:
            # its answer is lost once Drive did it; the checks' batch went before)
            emulator.faults.drop("POST", r"/batch" if batches else r"/trash", times=1)
        try:
            refuse()
        except Refused:
            raise stop("the lease is another trainer's now") from None
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(stop):   # (a Ctrl-C inside the guard: the same line, then stopped)
        push(str(src), "drive:runs/exp", delete=True, jobs=1, guard=guard)
    assert _trashed(emulator, "runs/exp") == sorted(names)    # Drive did them
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    lost = [line for line in said if "may be gone" in line]
    assert lost == (
        ["the removal of drive:runs/exp/a.txt, drive:runs/exp/b.txt and drive:runs/exp/c.txt "
         "was sent, and the push stopped before their answer came: they may be gone"]
        if batches else
        ["the removal of drive:runs/exp/a.txt was sent, and the push stopped before its "
         "answer came: it may be gone"]), said
    assert not any(line.startswith("deleted ") for line in said)


def test_trashes_instead_of_refused_deletes_are_said_when_the_guard_refuses_their_retry(
        emulator, drive_env, local_state, tmp_path, caplog):
    """A Content manager of a shared drive: Drive refuses the permanent deletes (403), and
    they go as trashes in a batch of their own. The guard refused that batch's retry: the
    trashes Drive answered done before (one call of three answered 503) were neither said
    "deleted" nor warned "moved to the trash instead"."""
    from drivestage.upload_tree import push

    team = emulator.add_shared_drive("Team", role="fileOrganizer")
    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    push(str(src), "drive:shared/Team/exp", jobs=1)
    ids = {n: emulator.add_file(f"exp/{n}", n.encode(), drive_id=team)
           for n in ("a.txt", "b.txt", "c.txt")}
    refuse = _refusing_after_one_removal(emulator)
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        if len(calls) == 3:   # (the pass's start, the deletes' batch: now the trashes')
            emulator.faults.inject("POST", rf"/files/{ids['c.txt']}/trash", status=503,
                                   times=1)
        if len(calls) >= 3:
            refuse()
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(Refused):
        push(str(src), "drive:shared/Team/exp", delete=True, delete_permanently=True, jobs=1,
             guard=guard)
    trashed = sorted(n for n, i in ids.items() if emulator.store.get(i)["trashed"])
    assert trashed == ["a.txt", "b.txt"]
    said = [r.getMessage() for r in caplog.records if r.name == "drivestage.extra"
            and r.getMessage().startswith("deleted ")]
    assert said == ["deleted a.txt (not in the local tree)", "deleted b.txt (not in the local tree)"]
    warned = [r.getMessage() for r in caplog.records if "Moved to the shared drive's trash "
              "instead" in r.getMessage()]
    assert len(warned) == 1, warned


@pytest.mark.parametrize("changed", [True, False], ids=["replaced", "repaired"])
def test_a_same_named_copy_whose_removal_answer_was_lost_is_not_said_left(
        emulator, drive_env, local_state, tmp_path, caplog, changed):
    """Three copies of notes.txt: the push keeps one and removes the others. The first
    removal's answer is lost once Drive did it, and the guard refuses its retry: guards40's
    line said both copies "not removed (ids A, B)", where A was in the trash. (A delete's
    answer, 204, has no body to cut: the copies go to the trash here.)"""
    from drivestage.upload_tree import push

    ids = [emulator.add_file("runs/exp/notes.txt", body) for body in (b"one", b"two", b"three")]
    src = tmp_path / "run"
    src.mkdir()
    (src / "notes.txt").write_bytes(b"four" if changed else b"three")
    refuse = _refusing_after_one_removal(emulator)

    def guard() -> None:   # (the first removal's answer lost: armed at its own check)
        if not any(r.kind in REMOVALS for r in emulator.requests) and not armed:
            armed.append(emulator.faults.drop("POST", r"/trash", times=1))
        refuse()
    armed: list = []
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", jobs=1, guard=guard, use_trash=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "drivestage.old_copies"]
    kept = re.search(r"kept (?:the one just uploaded \()?([\w-]+)", lines[0]).group(1)
    live = {f["id"] for f in emulator.files() if not f["labels"]["trashed"]}
    others = [i for i in ids if i != kept]
    gone = [i for i in others if i not in live]
    stays = [i for i in others if i in live]
    assert len(gone) == 1 and len(stays) == 1, (gone, stays)
    assert lines[1:] == [
        f"notes.txt: the removal of the copy {gone[0]} was sent, and the push stopped before "
        "its answer came: it may be gone",
        f"notes.txt: 1 of those copies was not removed (ids {stays[0]}): the push stopped "
        "first"], lines


def test_batch_removals_done_before_the_server_refused_the_retry_batch_are_said(
        emulator, drive_env, local_state, tmp_path, caplog):
    """The removals' batch: a.txt and b.txt done, c.txt answered 503; its retry, the batch
    request itself refused (404: a proxy that takes no batches now): the items are removed
    one request each, and the guard refuses the first. Drive's own answers of the first
    batch (a.txt, b.txt done) were dropped: they were sent again alone, and where the guard
    stopped that, never said."""
    from drivestage.upload_tree import push

    names = ("a.txt", "b.txt", "c.txt")
    src = _seed(emulator, tmp_path, names)
    ids = {n: emulator.find(f"runs/exp/{n}")["id"] for n in names}
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        if len(calls) == 2:   # (the pass's start, then the removals' batch)
            emulator.faults.inject("POST", rf"/files/{ids['c.txt']}/trash", status=503,
                                   times=1)
        elif len(calls) == 3:   # (its retry, of c.txt alone)
            emulator.faults.inject("POST", r"/batch", status=404, times=1)
        elif len(calls) > 3:
            raise Refused("the lease is another trainer's now")
    caplog.set_level(logging.INFO, logger="drivestage")
    with pytest.raises(Refused):
        push(str(src), "drive:runs/exp", delete=True, jobs=1, guard=guard)
    assert _trashed(emulator, "runs/exp") == ["a.txt", "b.txt"]
    said = [r.getMessage() for r in caplog.records if r.name == "drivestage.extra"
            and r.getMessage().startswith("deleted ")]
    assert said == ["deleted a.txt (not in the local tree) to the trash",
                    "deleted b.txt (not in the local tree) to the trash"]
    lone = [r for r in emulator.requests if r.path.endswith("/trash") and not r.in_batch]
    assert lone == []   # (none sent again alone: Drive had answered them)


@pytest.mark.parametrize("lost", [False, True], ids=["answered", "lost"])
@pytest.mark.parametrize("batches", [True, False], ids=["batch", "alone"])
def test_a_guard_refusing_at_each_call_in_turn_leaves_every_line_true(
        emulator, drive_env, local_state, tmp_path, caplog, batches, lost):
    """--delete of three items, the second's first try answered 503 (a retry; ``lost``: the
    first request that removes is done and its answer cut): the guard refuses at its 1st
    call, then its 2nd, … until the push goes through. Each time the items said "deleted"
    are in the trash, and those in the trash not said so are named as "may be gone"."""
    from drivestage.upload_tree import push

    names = ("a.txt", "b.txt", "c.txt")
    src = _seed(emulator, tmp_path, names)
    ids = {n: emulator.find(f"runs/exp/{n}")["id"] for n in names}
    for n in range(1, 12):
        for name in names:   # (back as they were)
            emulator.store.set_trashed(ids[name], False)
        emulator.faults.clear()
        if not batches:
            emulator.faults.inject("POST", "/batch", status=404, times=None)
        emulator.faults.inject("POST", rf"/files/{ids['b.txt']}/trash", status=503, times=1)
        calls: list[int] = []

        def guard() -> None:
            calls.append(1)
            if lost and len(calls) == 2:   # (the first request that removes: cut)
                emulator.faults.drop("POST", r"/batch" if batches else
                                     rf"/files/{ids['a.txt']}/trash", times=1)
            if len(calls) == n:
                raise Refused(f"refused at call {n}")
        caplog.clear()
        caplog.set_level(logging.INFO, logger="drivestage")
        try:
            push(str(src), "drive:runs/exp", delete=True, jobs=1, guard=guard)
        except Refused:
            done = False
        else:
            done = True
        gone = _trashed(emulator, "runs/exp")
        lines = [r.getMessage() for r in caplog.records]
        said = sorted(line.split()[1] for line in lines if line.startswith("deleted "))
        assert len(said) == len(set(said)) and set(said) <= set(gone), (n, lines)
        maybe = [line for line in lines if line.endswith("may be gone")]
        for name in set(gone) - set(said):
            assert any(f"drive:runs/exp/{name}" in line for line in maybe), (n, name, lines)
        if done:
            assert said == gone == list(names)
            # (the guard's calls, and one: the start, each request that removes, a retry's)
            assert n == {(True, False): 4, (True, True): 4, (False, False): 6,
                         (False, True): 7}[batches, lost], n
            break
    else:
        raise AssertionError("the push never went through")
