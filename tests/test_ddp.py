"""DDP: torchrun launches the CLI; two CPU processes with gloo stop together when one of them
gets SIGTERM, and resume bit-identically (both ranks: the weights of the torchrun run)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    from _ports import free_port   # (not an ephemeral port: see there)

    return free_port()


#: The run of the test below (18 images / 2 ranks / 4 per rank: 2 steps an epoch).
FULL = {"train.epochs": 2, "train.freeze_epochs": 1, "train.eval_period": 2, "train.save_minutes": 0}


def _stop_worker(rank: int, world: int, port: int, config: str, out: str, mode: str) -> None:
    """``mode``: ``stop`` (a real SIGTERM to rank 1 alone, right after iteration 3) or
    ``resume`` (--resume auto)."""
    import logging
    import signal

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from trainer.config import load_config
    from trainer.engine import fit
    from trainer.errors import TrainingInterrupted

    if mode == "stop" and rank == 1:
        class _Signal(logging.Handler):
            def emit(self, record):
                if "(iteration 3)" in record.getMessage():
                    os.kill(os.getpid(), signal.SIGTERM)

        log = logging.getLogger("trainer.engine")
        log.setLevel(logging.DEBUG)
        log.addHandler(_Signal())
    try:
        result = fit(load_config(config), resume="auto" if mode == "resume" else "none")
    except TrainingInterrupted as exc:
        torch.save({"message": str(exc), "code": exc.exit_code}, os.path.join(out, f"stop{rank}.pt"))
        return
    torch.save({"model": result.model.state_dict(), "final": result.final},
               os.path.join(out, f"{mode}{rank}.pt"))


@pytest.mark.slow
def test_torchrun_launches_the_cli_and_a_sigterm_to_one_gloo_rank_stops_both_and_resumes_bit_identical(
        tiny_config, tmp_path):
    """torchrun launches ``trainer train`` on two gloo ranks (rank 0 alone reports and saves);
    then the same run on two ranks of our own, where a SIGTERM to rank 1 stops both after the
    same iteration (rank 0 saved), and the resume on both ranks ends with the weights of the
    torchrun run (the same arithmetic: one thread each). One test: the torchrun run is the
    uninterrupted reference of the rest."""
    from trainer import checkpoint as ckpt

    full_dir = tmp_path / "full"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Each rank torchrun starts is tests/_forkrun.py (the standard library only: it starts in
    # milliseconds), which has `python -m trainer ARGS` forked with torch imported, in the
    # rank's environment (torchrun's RANK, MASTER_PORT, ...) and on its streams, and exits as
    # it did: the same command, without two fresh imports of torch (2-3 s of CPU each).
    import shutil
    import tempfile

    from _trainer_proc import serve

    # (A short folder, as tests/_forkcli.py's: a UNIX socket's path has 107 bytes at most.)
    short = tempfile.mkdtemp(prefix="trainer-serve-")
    sock = os.path.join(short, "s")
    server = serve(sock)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port",
             str(_free_port()), os.path.join(os.path.dirname(__file__), "_forkrun.py"), sock,
             "train", "-c", tiny_config(**FULL, **{"train.out_dir": str(full_dir)}),
             "--resume", "none"],
            capture_output=True, text=True, env=env, timeout=170)
    finally:
        server.kill()
        server.wait(30)
        shutil.rmtree(short, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("final mAP@0.5 = ") == 1   # rank 0 alone reports
    # Rank 0 alone saved: one RNG state per rank, 2 steps an epoch of each rank.
    assert {"last.pt", "epoch_001.pt", "epoch_002.pt"} <= set(os.listdir(full_dir))
    state = ckpt.load_checkpoint(str(full_dir / "last.pt"))
    assert len(state["rng"]) == 2
    assert state["iteration"] == 4         # 18 images / 2 ranks / 4 per rank: 2 steps per epoch
    ref = state["model"]

    stopped = tiny_config(**FULL, **{"train.out_dir": str(tmp_path / "run")})
    # Ranks forked from this process, which imported torch already (spawn imported it in each
    # of the four: a third of the test; a fork server, once more in the server: 2-3 s of CPU),
    # torch._dynamo too (which DDP and the optimizer import: 1.3 s of CPU in each rank), and
    # the trainer. (Each rank computes on one thread: _stop_worker; test_messages_hang32.)
    import gc

    import trainer.config  # noqa: F401
    import trainer.engine  # noqa: F401

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)   # (imports torch._dynamo)
    for mode in ("stop", "resume"):
        gc.collect()   # (an earlier test's gloo groups end here, not in the ranks)
        mp.start_processes(_stop_worker, args=(2, _free_port(), stopped, str(tmp_path), mode), nprocs=2,
                           join=True, start_method="fork")
        if mode == "stop":
            s0 = torch.load(tmp_path / "stop0.pt", weights_only=True)
            s1 = torch.load(tmp_path / "stop1.pt", weights_only=True)
            # Rank 1 got the signal; both ranks stopped after the same iteration, rank 0 saved.
            assert s0["code"] == s1["code"] == 143
            assert s0["message"] == (f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt "
                                     f"is saved in {tmp_path / 'run'}; resume with --resume auto")
            assert s1["message"] == "stopped by SIGTERM at epoch 2, iteration 3"
            state = ckpt.load_checkpoint(str(tmp_path / "run" / "autosave_00000003.pt"))
            assert ckpt.position_of(state) == (1, 3, 1) and len(state["rng"]) == 2
    # Both ranks end with the same weights, the uninterrupted run's; rank 0 alone evaluated.
    r0 = torch.load(tmp_path / "resume0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "resume1.pt", weights_only=True)
    assert r0["final"].get("map50") is not None and r1["final"] == {}
    for rank, got in enumerate((r0["model"], r1["model"])):
        for k, v in ref.items():
            assert torch.equal(v, got[k]), (rank, k)
