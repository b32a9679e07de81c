"""stop29: TensorBoard started on a run folder whose disk does not answer (a network or FUSE
mount that hangs; modelled by train28's bindfs mount stopped with SIGSTOP). Its folder and
event file were made in the training thread at the start of the run, unbounded: the run
waited there for good, before its first iteration, with no word, and a SIGTERM was never
seen. Now it is bounded as TensorBoard's other writes are: said, TensorBoard off, the run
goes on."""
from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import pytest

from test_attacktr29_hung import _ended
from test_train28_hung_disk import hung  # noqa: F401  (a fixture)
from trainer.state import Position


def test_tensorboard_started_on_a_disk_that_does_not_answer_holds_no_start(hung, caplog):
    pytest.importorskip("torch.utils.tensorboard")
    from trainer.callbacks import TensorBoardLogger

    out = hung.path / "logs"
    os.makedirs(out)
    tb = TensorBoardLogger(str(out), within=1.0)
    run = SimpleNamespace(state=SimpleNamespace(pos=Position(0, 0, 0)))
    hung.hang()
    try:
        with caplog.at_level(logging.WARNING, logger="trainer"):
            ended, took = _ended(lambda: tb.on_fit_start(run), 20)
    finally:
        hung.answer()
        if tb.bounded._under_way is not None:   # made once the disk answers, closed at once
            tb.bounded._under_way.wait(30)
    assert ended, f"the start waited on TensorBoard ({took:.1f} s)"
    assert tb.writer is None
    said = [r.getMessage() for r in caplog.records if "has not ended" in r.getMessage()]
    assert said == [f"starting TensorBoard in {out / 'tensorboard'} has not ended for 1 s: the "
                    f"disk does not answer (a hung network or FUSE mount?); training goes on "
                    f"without it"], said
