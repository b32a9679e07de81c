"""train27: a stop while two epoch saves wait (three epoch ends within one write) writes the
waiting ones in the training thread (``BackgroundWriter._write_both_now``) while the writing
thread may still be writing the first: both wrote ``last.pt`` at once. The temporary names
differ (never a torn file), but the first one's rename came last: ``last.pt`` ended as the
oldest of the three epochs, and its copies (``epoch_NNN.pt``) were made from whatever
``last.pt`` was at that moment. Now a write of a name waits for the writes of that name
handed over before it: ``last.pt`` ends as the newest epoch, its sidecar describing it.

Event-driven: the first epoch's state holds an object whose pickling waits on an event, so
its write is held in the middle, as a slow disk holds it."""
from __future__ import annotations

import collections
import hashlib
import threading

import torch

from test_writer import _until
from trainer import checkpoint as ckpt
from trainer.state import Position
from trainer.writer import BackgroundWriter, SaveJob


class _Gate:
    """Pickled inside a checkpoint's state: the write waits there until :attr:`go` is set."""

    def __init__(self) -> None:
        self.reached, self.go = threading.Event(), threading.Event()

    def __reduce__(self):
        self.reached.set()
        assert self.go.wait(60), "the gate was never opened"
        return (collections.OrderedDict, ())   # (loads with weights_only)


def _epoch(epoch: int, gate=None) -> SaveJob:
    state = {"format_version": 2, "model": {"w": torch.full((5000,), float(epoch))},
             "optimizer": {}, "epoch": epoch, "iteration": 4 * epoch, "epoch_iteration": 0,
             "config": {}, "run": "r", "gate": gate}
    return SaveJob(state, ["last.pt", f"epoch_{epoch:03d}.pt"], Position(epoch, 4 * epoch, 0))


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_a_stop_while_epoch_saves_wait_leaves_last_pt_the_newest_epoch(tmp_path):
    writer = BackgroundWriter(str(tmp_path), None)
    gate = _Gate()
    one, two, three = _epoch(1, gate), _epoch(2), _epoch(3)
    submitted = threading.Thread(target=lambda: (writer.submit(two),
                                                 writer.submit(three, stopping=lambda: True)))
    try:
        writer.submit(one)
        assert gate.reached.wait(60), "epoch 1 was never written"
        submitted.start()       # epoch 2 waits in the slot; epoch 3 comes with a stop
        # Epoch 3 written while epoch 1 still is (before), or epoch 2 handed over to be
        # written after it (now): then epoch 1's write goes on.
        _until(lambda: three.done.is_set() or any(
            job is two for job in getattr(writer, "_writing", ())), "epoch 3 never came")
    finally:
        gate.go.set()
        submitted.join(60)
        assert writer.close() is True
    assert one.written and two.written and three.written
    last = tmp_path / "last.pt"
    side = ckpt.read_sidecar(str(last))
    assert side is not None and side.epoch == 3 and side.md5 == _md5(last)
    assert ckpt.load_checkpoint(str(last))["epoch"] == 3
    for e in (1, 2, 3):
        path = tmp_path / f"epoch_{e:03d}.pt"
        side = ckpt.read_sidecar(str(path))
        assert ckpt.load_checkpoint(str(path))["epoch"] == e
        assert side is not None and side.epoch == e and side.md5 == _md5(path)


def test_a_stop_save_is_not_replaced_by_the_autosave_of_its_iteration_still_waiting(tmp_path):
    """An autosave due at an epoch's last step waits behind a slow write; a SIGTERM during the
    evaluation saves that same iteration at once (``autosave_<iteration>.pt``, the same name).
    The waiting autosave, written after it, replaced the stop's file (its state taken before
    the evaluation) once the stop had been reported saved. Now it is dropped: the stop's
    save holds that iteration."""
    from test_writer import _job as autosave

    writer = BackgroundWriter(str(tmp_path), None)
    gate = _Gate()
    one = _epoch(1, gate)
    waiting, stop = autosave(5, size=4000), autosave(5, droppable=False, size=8000)
    try:
        writer.submit(one)
        assert gate.reached.wait(60), "epoch 1 was never written"
        writer.submit(waiting)                  # waits: the writing thread is busy
        writer.write_now(stop)                  # another name than epoch 1's: at once
        assert stop.written
    finally:
        gate.go.set()
        assert writer.close() is True
    path = tmp_path / "autosave_00000005.pt"
    assert ckpt.load_checkpoint(str(path))["model"]["w"].numel() == 2000    # the stop's
    side = ckpt.read_sidecar(str(path))
    assert side is not None and side.md5 == _md5(path)
    assert waiting.dropped and not waiting.written
