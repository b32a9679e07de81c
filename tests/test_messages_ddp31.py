"""ddp31: a rank of a torchrun/DDP run lost mid-run (SIGKILLed, as by the kernel's OOM killer):
rank 0 ended with gloo's `Connection closed by peer` traceback and saved nothing (everything
trained since the last save lost). Now it saves the last completed iteration alone, with no
collective, and says so in one line, exit 1."""
from __future__ import annotations

import gc
import os
import re
import signal
import sys

import torch
from _gloo import LOST_PEER
from _messages import renders, shown

from trainer import checkpoint as ckpt

#: What rank 0 ends with (the torchrun command's other ranks say theirs).
LOST = ("stopped by the loss of … at …: … ended or stopped answering, its own lines say why; "
        "run the same torchrun command again")


def _rank(rank: int, port: int, config: str, out: str) -> None:
    """One of two gloo ranks. Rank 1 is SIGKILLed in its third step's loss (after its forward:
    rank 0 then waits in that step's all_reduce, its own forward done: its BatchNorm statistics
    moved). Rank 0 keeps its model as iteration 2 left it, to compare with what it saves."""
    from trainer.callbacks import Callback
    from trainer.config import load_config
    from trainer.engine import fit
    from trainer.errors import TrainingInterrupted
    from trainer.loss import YoloLoss

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    if rank == 1:
        forward, calls = YoloLoss.forward, []

        def dies(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return forward(self, *args, **kwargs)

        YoloLoss.forward = dies   # type: ignore[method-assign]

    class _Keep(Callback):
        def on_train_batch_end(self, run, pos, logs):
            if pos.iteration == 2:
                torch.save({"model": run.bare_model.state_dict(),
                            "lr": [g["lr"] for g in run.optimizer.param_groups]},
                           os.path.join(out, "at2.pt"))

    try:
        fit(load_config(config), resume="none", callbacks=[_Keep()])
    except TrainingInterrupted as exc:
        with open(os.path.join(out, f"line{rank}.txt"), "w") as f:
            f.write(str(exc))
        sys.exit(exc.exit_code)


@renders(LOST)
def test_ddp_rank_1_killed_mid_step_rank_0_saves_the_last_iteration_alone(tiny_config, tmp_path):
    import multiprocessing

    from _ports import free_port   # (not an ephemeral port: see there)

    port = free_port()
    config = tiny_config(**{"train.batch_size": 4, "train.freeze_epochs": 0, "train.epochs": 1,
                            "train.save_minutes": 0})
    fork = multiprocessing.get_context("fork")
    gc.collect()   # (what an earlier test left for the GC, threads of its own, ends here, not
    #                in the ranks: gloo groups of one ended there with a segmentation fault)
    ranks = [fork.Process(target=_rank, args=(r, port, config, str(tmp_path))) for r in (0, 1)]
    for p in ranks:
        p.start()
    for p in ranks:
        p.join(120)
        if p.is_alive():   # (a hang: the test fails, not the suite)
            p.kill()
    out = tmp_path / "logs"

    assert [p.exitcode for p in ranks] == [1, -signal.SIGKILL]
    line = (tmp_path / "line0.txt").read_text()
    assert re.fullmatch(
        rf"stopped by the loss of rank 1 at epoch 1, iteration 2: autosave_00000002\.pt is "
        rf"saved in {re.escape(str(out))}; resume with --resume auto \(gloo: {LOST_PEER}: "
        rf"rank 1 ended or stopped answering, its own lines say why; run the same torchrun "
        rf"command again\)", line), line
    shown(LOST, f"Error: {line}")
    state = ckpt.load_checkpoint(str(out / "autosave_00000002.pt"))
    assert ckpt.position_of(state) == (0, 2, 2) and len(state["rng"]) == 1
    # The model of iteration 2 (its BatchNorm statistics as that step left them, not as the
    # third step's forward moved them), and the learning rate of its step.
    at2 = torch.load(tmp_path / "at2.pt", weights_only=True)
    assert sorted(state["model"]) == sorted(at2["model"])
    for k, v in at2["model"].items():
        assert torch.equal(state["model"][k], v), k
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == at2["lr"]
