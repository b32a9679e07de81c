"""DDP: two CPU processes with gloo end with identical weights, stop together when one of them
gets SIGTERM, and resume bit-identically; torchrun launches the CLI."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_launches_the_cli(tiny_config, tmp_path):
    config = tiny_config(**{"train.epochs": 1, "train.freeze_epochs": 0})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port",
         str(_free_port()), "-m", "trainer", "train", "-c", config, "--resume", "none"],
        capture_output=True, text=True, env=env, timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("final mAP@0.5 = ") == 1   # rank 0 alone reports
    assert (tmp_path / "logs" / "last.pt").is_file()


def _stop_worker(rank: int, world: int, port: int, config: str, out: str, mode: str) -> None:
    """``mode``: ``full`` (uninterrupted), ``stop`` (a real SIGTERM to rank 1 alone, right after
    iteration 3), ``resume`` (--resume auto)."""
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
def test_gloo_ranks_agree_and_a_sigterm_to_one_stops_both_and_resumes_bit_identical(tiny_config, tmp_path):
    from trainer import checkpoint as ckpt

    kw = {"train.epochs": 2, "train.freeze_epochs": 1, "train.eval_period": 2, "train.save_minutes": 0}
    full = tiny_config(**kw, **{"train.out_dir": str(tmp_path / "full")})
    stopped = tiny_config(**kw, **{"train.out_dir": str(tmp_path / "run")})
    # Ranks forked from one server that imported torch and the trainer once (spawn imported
    # them in each of the six: a third of the test, more on busy cores).
    mp.set_forkserver_preload(["torch", "trainer.engine", "trainer.config"])
    for config, mode in ((full, "full"), (stopped, "stop"), (stopped, "resume")):
        mp.start_processes(_stop_worker, args=(2, _free_port(), config, str(tmp_path), mode), nprocs=2,
                           join=True, start_method="forkserver")
        if mode == "full":
            # Two gloo ranks end with identical weights; rank 0 alone evaluated and saved.
            r0 = torch.load(tmp_path / "full0.pt", weights_only=True)
            r1 = torch.load(tmp_path / "full1.pt", weights_only=True)
            for k, v in r0["model"].items():
                assert torch.equal(v, r1["model"][k]), k
            assert r0["final"].get("map50") is not None and r1["final"] == {}
            assert {"last.pt", "epoch_001.pt", "epoch_002.pt"} <= set(os.listdir(tmp_path / "full"))
            state = ckpt.load_checkpoint(str(tmp_path / "full" / "last.pt"))
            assert len(state["rng"]) == 2          # one RNG state per rank
            assert state["iteration"] == 4         # 18 images / 2 ranks / 4 per rank: 2 steps per epoch
            assert all(torch.equal(v, state["model"][k]) for k, v in r0["model"].items())
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
    ref = torch.load(tmp_path / "full0.pt", weights_only=True)["model"]
    for rank in (0, 1):
        got = torch.load(tmp_path / f"resume{rank}.pt", weights_only=True)["model"]
        for k, v in ref.items():
            assert torch.equal(v, got[k]), (rank, k)
