"""The Ctrl-C sweeps' one loop (test_interrupt_locks._each_ctrl_c), on works made here: a
Ctrl-C that Python lost (it landed in a finalizer: "Exception ignored in") is a point
passed, not the work's end, and a sweep that ends short of the points its work has fails
rather than passes having tested less (sweep51)."""
from __future__ import annotations

import pytest

from test_interrupt_locks import _each_ctrl_c


class _Dropped:
    def __del__(self) -> None:   # a point whose Ctrl-C Python loses
        pass


def _step() -> None:
    pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_python_lost_is_a_point_passed_and_the_sweep_goes_on():
    """Points: work's start, _step, _Dropped.__del__ (lost), _step. push27_nested's sweep
    (and attacknew33_locks', lefts44b_bulk's, the place lock's) ended at the first run
    that raised nothing: here after point 2, the last _step never interrupted."""
    def work() -> None:
        _step()
        _Dropped()   # made and dropped at once: its __del__ runs here, traced
        _step()

    points = [(p.k, p.where.split(" <- ")[0].rsplit(":", 1)[0], p.raised)
              for p in _each_ctrl_c(work, only_under=__file__, opcodes=False)]
    here = "test_sweep51_points.py"
    assert points == [(1, f"{here}:work", KeyboardInterrupt),
                      (2, f"{here}:_step", KeyboardInterrupt),
                      (3, f"{here}:__del__", None),
                      (4, f"{here}:_step", KeyboardInterrupt)]


def test_a_sweep_that_ends_short_of_its_works_points_fails():
    """The work has 3 points in the two runs the sweep counts, then 1 (its start, where
    the sweep's 1st run lands): the sweep's 2nd run ends before its point, 2 of 3 untried."""
    runs: list[int] = []

    def work() -> None:
        runs.append(1)
        if len(runs) <= 2:
            _step()
            _step()

    with pytest.raises(AssertionError, match=r"ended at point 2 \(1 in its last run\), "
                                             r"short of the 3 a run of its work has"):
        for _ in _each_ctrl_c(work, only_under=__file__, opcodes=False):
            pass
    assert len(runs) == 3
