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
