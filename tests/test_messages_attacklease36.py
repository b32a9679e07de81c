"""attacklease36: a torchrun job (2 gloo ranks) whose rank 0 is refused by the run's lease
(another trainer renews it): rank 0's line says what to do (stop that one, wait, or
--take-over); rank 1's ended `…its own lines say why; run the same torchrun command again`,
and the same command is refused again. Now, where rank 0 ended with its own line before
training, rank 1 says to do what that line says first. Forked ranks as the other DDP tests'
(tests/test_messages_hang32.py), the lease held by this process on the emulator."""
from __future__ import annotations

import os
import re
import sys

from _messages import renders, shown

DEST = "drive:runs/exp"
FIRST = ("… was lost while …, before training: nothing was trained, nothing is saved (…: rank 0 "
         "ended or stopped answering, its own lines say why; do what they say, then run the "
         "torchrun command again)")


def _fit(rank: int, port: int, config: str, out: str) -> None:
    import torch

    from trainer.config import load_config
    from trainer.engine import fit
    from trainer.errors import TrainerError

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        fit(load_config(config), resume="none")
    except TrainerError as exc:   # (TrainingInterrupted, LeaseHeldError: the line each shows)
        with open(os.path.join(out, f"line{rank}.txt"), "w") as f:
            f.write(str(exc))
        sys.exit(getattr(exc, "exit_code", 1))


@renders(FIRST)
def test_rank_1_of_a_job_refused_by_the_lease_says_to_do_what_rank_0_says(drive_env, tiny_config,
                                                                           tmp_path):
    import multiprocessing

    from _ports import free_port
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    holder = RunLease(DriveFolder(DEST, str(tmp_path / "other")), period_s=0.6)
    holder.acquire()
    holder.start()
    config = tiny_config(**{"train.batch_size": 4, "train.freeze_epochs": 0, "train.epochs": 1,
                            "drive.logs": DEST, "drive.lease_minutes": 0.05})
    # (The ranks' 3 s period: a claim stale after 9 s, so the holder's renewal thread starved
    # 1.8 s on a loaded machine is not read as gone and taken over, as at 0.01.)
    # (Imported here, once, not in each forked rank as it builds its optimizer: torch imports
    # torch._dynamo then (Optimizer.__init__ is wrapped by torch._disable_dynamo), 1.1 s of
    # CPU per rank at idle, both ranks at once; a no-op where this process has it already.)
    import torch._dynamo  # noqa: F401
    fork = multiprocessing.get_context("fork")
    port = free_port()
    ranks = [fork.Process(target=_fit, args=(r, port, config, str(tmp_path))) for r in (0, 1)]
    try:
        for p in ranks:
            p.start()
        for p in ranks:
            p.join(120)
    finally:
        for p in ranks:
            if p.is_alive():
                p.kill()
                p.join()
        holder.release()
    assert [p.exitcode for p in ranks] == [1, 1]
    assert "is the folder of a run another trainer still trains" in \
        (tmp_path / "line0.txt").read_text()
    line = (tmp_path / "line1.txt").read_text()
    assert re.fullmatch(
        r"rank 0 was lost while [^,]+, before training: nothing was trained, nothing is saved "
        r"\(gloo: [^()]*: rank 0 ended or stopped answering, its own lines say why; do what "
        r"they say, then run the torchrun command again\)", line), line
    shown(FIRST, f"Error: {line}")
