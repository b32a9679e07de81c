"""Attack 21 on retention across a branch (retain20's edges): a run sent back to a state
that only ``best.pt`` holds (``save_period`` 2, so no epoch file of it): the branch record
lands on ``best.json``, a file the policy does not manage. Retention must still see it, so
the line it left ranks older than the branch and ``prune`` does not keep the diverged newest
for good."""
from __future__ import annotations

from trainer import checkpoint as ckpt
from test_attack19_branch import FOLDER, _decide, _line, _on_drive, _put, _record, _state
from test_attack19_branch import drive  # noqa: F401 (fixture)
from test_attack20_retain import _drive_epochs, _policy, _push, _save, _saved


def _best_only(logs, drive):
    """Epochs 2-10 every second epoch (save_period 2), the best state (epoch 5) only in
    best.pt; Drive holds 8, 10, best.pt and last.pt (what keep_last 2 left)."""
    made = _line(logs, [2, 4, 6, 8, 10])
    best = ckpt.save_checkpoint(_state("r1", 5), str(logs / "best.pt"),
                                saved=_saved(made[4]) + 0.5)
    for path in (made[8], made[10], best, str(logs / "last.pt")):
        _put(drive, path)
    return made, best


def test_a_branch_recorded_on_best_pt_only_ranks_the_line_it_left_older(drive, tmp_path):
    """Sent back to best.pt (epoch 5; no epoch_005.pt), keep_last 2. The branch saves 6,
    then 8 (each under the diverged line's name). Drive must hold 4 and 6, then 6 and 8: the
    record, on best.json, was not seen, so the diverged 8 and 10 ranked newest, the branch's
    6 went at its next save, and Drive held the diverged 10 beside the branch's newest
    alone. A prune agrees (it no longer keeps 10 as the run's newest)."""
    from drivestage.pruning import prune

    logs = tmp_path / "logs"
    made, best = _best_only(logs, drive)
    assert _record(logs, _decide(logs, best), policy=_policy(2)) == "best.pt"
    assert ckpt.read_sidecar(best).branch is not None
    six = _save(logs, 6, after=_saved(best))
    _push(logs, keep_last=2)
    assert _drive_epochs(drive) == {4, 6}     # the line it goes on with: 4 before 5
    _save(logs, 8, after=_saved(six))
    _push(logs, keep_last=2)
    assert _drive_epochs(drive) == {6, 8}
    on = _on_drive(drive)
    assert "best.pt" in on and "best.json" in on
    prune(f"drive:{FOLDER}", _policy(2))
    assert _drive_epochs(drive) == {6, 8}


def test_back_to_the_line_left_whose_clock_ran_ahead_puts_the_first_record_out_of_force(
        drive, tmp_path):
    """Machine B trained epochs 1-5; machine A went on with 6-10, its clock an hour ahead
    (Drive dates their sidecars back to their arrival). On B the user sends the run back to
    5 (keep_last 10: nothing pruned), then returns to the 10 it left, pulled from Drive with
    its sidecar as A wrote it. The second record's "first saved" was A's clock's, an hour
    ahead, later than the first record: the first stayed in force, and keep_last 3 kept the
    abandoned 3-5 while 8 and 9 of the line the run goes on with went. The first save of a
    state seen on Drive is no later than its arrival there."""
    import shutil
    import time

    from drivestage.pruning import prune
    from test_attack19_branch import HOUR

    logs, other = tmp_path / "logs", tmp_path / "other"
    mine = _line(logs, [1, 2, 3, 4, 5], start=time.time() - 60)
    for path in mine.values():
        _put(drive, path)
    theirs = _line(other, [6, 7, 8, 9, 10], start=time.time() + HOUR)
    for path in theirs.values():
        _put(drive, path)
    assert _record(logs, _decide(logs, str(mine[5])), policy=_policy(10)) == "epoch_005.pt"
    assert _drive_epochs(drive) == set(range(1, 11))
    for path in (theirs[10], ckpt.sidecar_path(theirs[10])):   # pulled from Drive
        shutil.copy2(path, logs / path.rsplit("/", 1)[-1])
    ten = str(logs / "epoch_010.pt")
    assert _record(logs, _decide(logs, ten), policy=_policy(3)) == "epoch_010.pt"
    assert _drive_epochs(drive) == {8, 9, 10}
    assert prune(f"drive:{FOLDER}", _policy(3)).to_delete == []
