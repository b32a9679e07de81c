"""attacktrain35 (hang32's open point): under torchrun, a rank whose training thread blocked in
a call that lets the interpreter go (here: the open of a FIFO no one writes, as a read from a
network mount that stopped answering blocks; an image of the batch, ``data.workers: 0``)
still beat its heartbeat from its own thread: the other rank waited in its collective for the
process group's whole timeout (30 minutes), then ended in gloo's traceback, nothing saved.

Now the heartbeat stops once the training thread has been in one call outside any collective
for ``train.silent_rank_minutes`` (:mod:`trainer.stuck`), and the other rank ends the run as
for a silent rank: rank 0 saves the last iteration both completed, one line, exit 1."""
from __future__ import annotations

import os
import re

from _messages import shown
from test_messages_hang32 import BOUND_S, SILENT, _end, _fit, _port, _run_ranks

from trainer import checkpoint as ckpt


def _stuck_in_a_read(rank: int, port: int, config: str, out: str, fifo: str, at: int) -> None:
    """Rank 1's training thread blocks for good in its ``at``-th training sample (an open of
    ``fifo``, which no one writes)."""
    import logging

    from trainer.data.dataset import YoloDataset

    if rank == 1:
        logging.getLogger("trainer").addHandler(logging.FileHandler(os.path.join(out, "log1.txt")))
        sample, calls = YoloDataset.sample, []

        def blocks(self, index):
            if self.train:
                calls.append(index)
                if len(calls) == at:
                    os.open(fifo, os.O_RDONLY)   # (blocks: the interpreter is let go)
            return sample(self, index)

        YoloDataset.sample = blocks   # type: ignore[method-assign]
    _fit(rank, port, config, out)


def test_ddp_rank_1_stuck_in_a_read_rank_0_saves_and_names_it(tiny_config, tmp_path):
    config = tiny_config(**{"train.batch_size": 4, "train.freeze_epochs": 0, "train.epochs": 1,
                            "train.save_minutes": 0, "train.silent_rank_minutes": BOUND_S / 60,
                            "train.mosaic": False, "train.mixup": False})
    fifo = str(tmp_path / "dead-mount-image.jpg")
    os.mkfifo(fifo)
    # Two samples a rank a step: rank 1 blocks in step 3's batch, after two steps.
    codes = _end(_run_ranks(_stuck_in_a_read, _port(), config, str(tmp_path), fifo, 5), live=0)
    out = tmp_path / "logs"

    assert codes[0] == 1, codes   # (rank 1 stays in its read until it is killed)
    line = (tmp_path / "line0.txt").read_text()
    m = re.fullmatch(
        rf"stopped by the loss of rank 1 at epoch 1, iteration 2: autosave_00000002\.pt is "
        rf"saved in {re.escape(str(out))}; resume with --resume auto \(rank 1 was silent for "
        rf"(\d+\.\d) s \(train\.silent_rank_minutes\): stopped, hung, or its machine frozen or "
        rf"cut off; end it if it is still there; run the same torchrun command again\)", line)
    assert m, line
    assert BOUND_S <= float(m[1]) < BOUND_S + 10
    shown(SILENT, f"Error: {line}")
    state = ckpt.load_checkpoint(str(out / "autosave_00000002.pt"))
    assert ckpt.position_of(state) == (0, 2, 2)
    # The stuck rank says where its training thread is, and why its heartbeat stops.
    err = (tmp_path / "log1.txt").read_text()
    assert re.search(r"rank 1: the training thread has been in blocks\(\) at "
                     r"tests/test_attacktrain35_stuck\.py:\d+ for \d+\.\d s, outside any "
                     r"collective \(a read from a network mount that stopped answering\?\): "
                     r"this rank's heartbeat stops, and the other ranks end the run as for a "
                     r"silent rank", err), err[-3000:]


def _sampled(work, guard_s: float = 60.0) -> list:
    """``work(started, done)`` run in a thread of its own, sampled as the heartbeat does
    (five looks, 0.05 s apart once ``started`` is set, a virtual clock's second each: the
    looks' real spacing only lets the thread run between them; what they judge is read on
    the virtual clock)."""
    import threading

    from trainer.stuck import Sampler

    started, done, box = threading.Event(), threading.Event(), []

    def run() -> None:
        box.append(Sampler(guard_s))
        work(started, done)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    seen = []
    for i in range(5):
        threading.Event().wait(0.05)
        seen.append(box[0].stuck_for(now=100.0 + i))   # (the clock: one second a look)
    done.set()
    thread.join(10)
    return seen


def test_one_blocked_call_is_stuck_a_collective_a_loop_or_a_computation_is_not():
    import threading

    from trainer.stuck import waiting

    def blocked(started, done):   # (one call that lets the interpreter go: a dead mount's read)
        started.set()
        done.wait()

    def in_a_collective(started, done):
        with waiting():
            blocked(started, done)

    def looping(started, done):   # (an evaluation, a loader: Python between its calls)
        started.set()
        while not done.is_set():
            threading.Event().wait(0.01)

    def computing(started, done):   # (one long call into C that lets the interpreter go:
        import hashlib                # 0.5 s of CPU here, longer than the five looks' 0.25 s:
                                      # one call spans them all, its frame and instruction
        started.set()                 # the same, only its CPU time grows)
        while not done.is_set():
            hashlib.pbkdf2_hmac("sha256", b"key", b"salt", 2 * 10**6)

    # (On this shared machine a thread may not run at all between two looks, or reach its
    # wait only after the first: the assertions allow one such look, not a run of them.)
    assert _sampled(blocked)[-1] >= 3.0
    assert min(_sampled(computing)[1:]) == 0.0   # (its CPU time grows: busy, not stuck)
    assert _sampled(in_a_collective) == [0.0] * 5
    assert min(_sampled(looping)[1:]) == 0.0
    # Looks further apart than the guard: this process was stopped (all its threads), which
    # says nothing of where the training thread is stuck.
    assert _sampled(blocked, guard_s=0.5) == [0.0] * 5
