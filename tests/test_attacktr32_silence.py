"""attacktr32: trainer.silence (hang32's heartbeats) against what is not a silent rank.

- A rank killed (SIGKILL, the kernel's OOM killer) while rank 0 was busy with no collective
  for longer than ``train.silent_rank_minutes`` (a long download of the data, a long
  evaluation) was judged silent once its beats stopped. The kernel had closed its
  connections, and gloo this rank's ends of them, so no socket to it was left to shut, and
  the judge took that for "its addresses never came": ``Error: stopped: rank 1 was silent …;
  nothing could be saved`` and ``os._exit(1)``, in the middle of rank 0's work. A collective
  meets a dead rank at once by itself (trainer.peer_loss: rank 0 saves, the line names the
  phase); now the judge leaves such a rank to it.
- A Ctrl-Z in the terminal of ``torchrun`` stops its agent alone (its ranks run in sessions of
  their own, and train on), and with it the job's store: rank 1 took rank 0 for silent once
  the store had not answered for the bound, and ended a healthy run.

Real forked gloo ranks under the real watch, idle in a collective (nothing else is needed:
the judge runs beside whatever the main thread does), bound 2 s.
"""
from __future__ import annotations

import datetime
import multiprocessing
import os
import signal
import threading
import time

import pytest

from test_messages_hang32 import _port

#: The silence bound of these runs, in seconds (idle ranks: nothing slows their beats).
BOUND_S = 2.0


def _agent(port: int) -> None:
    """torchrun's agent, as far as the ranks see it: the job's TCP store."""
    import torch.distributed as dist

    store = dist.TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False)
    threading.Event().wait(120)
    del store


def _idle_rank(rank: int, port: int, out: str, go: int, torchrun: bool) -> None:
    """A rank of a job (torchrun's: the agent's store; else env://, rank 0 hosts it) in a
    collective, rank 0 joining it once it reads a byte from ``go`` (a pipe: a long staging, an
    evaluation meanwhile; an Event's set waits for waiters a killed rank never acks), under
    trainer.silence's watch; its line into ``line<rank>.txt``, its exit code the line's."""
    from types import SimpleNamespace

    import torch.distributed as dist

    from trainer import distributed, silence
    from trainer.errors import TrainingInterrupted

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if torchrun:
        os.environ.update(GROUP_RANK="0", TORCHELASTIC_RUN_ID="a32",
                          TORCHELASTIC_RESTART_COUNT="0", TORCHELASTIC_USE_AGENT_STORE="True")
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    cfg = SimpleNamespace(train=SimpleNamespace(silent_rank_minutes=BOUND_S / 60))
    try:
        with silence.watch(cfg, distributed.env_info()):
            if rank == 0:
                os.read(go, 1)
            dist.barrier()
    except TrainingInterrupted as exc:
        with open(os.path.join(out, f"line{rank}.txt"), "w") as f:
            f.write(str(exc))
        os._exit(exc.exit_code)
    os._exit(0)


class Job:
    """Two idle ranks (:func:`_idle_rank`), the store's client to read their beats, and the
    agent under torchrun."""

    def __init__(self, out, torchrun: bool):
        import torch.distributed as dist

        from trainer import silence

        fork, port = multiprocessing.get_context("fork"), _port()
        self.agent = fork.Process(target=_agent, args=(port,)) if torchrun else None
        if self.agent is not None:
            self.agent.start()
        go, self.go = os.pipe()
        self.ranks = [fork.Process(target=_idle_rank, args=(r, port, str(out), go, torchrun))
                      for r in (0, 1)]
        for p in self.ranks:
            p.start()
        self.store = dist.TCPStore("127.0.0.1", port, is_master=False, wait_for_workers=False,
                                   timeout=datetime.timedelta(seconds=30))
        run = "a32" if torchrun else ""
        self.keys = f"trainer/alive/{run}/0/{silence._fits + 1}/beat/"   # (Watcher._prefix)
        self.waited = threading.Event()

    def beats(self) -> list:
        return [self.store.add(f"{self.keys}{r}", 0) for r in (0, 1)]

    def beaten(self, times: int) -> None:
        """Until each live rank beat ``times`` more times, or one ended."""
        since, until = self.beats(), time.monotonic() + 60   # (a hang fails the test)
        while all(p.is_alive() for p in self.ranks) and time.monotonic() < until and \
                min(b - s for b, s in zip(self.beats(), since)) < times:
            self.waited.wait(0.05)

    def end(self) -> list:
        """Rank 0 goes on into the collective; the exit codes."""
        os.write(self.go, b"g")
        for p in self.ranks:
            p.join(60)
        return [p.exitcode for p in self.ranks]

    def close(self) -> None:
        for p in (*self.ranks, *([self.agent] if self.agent else [])):
            if p.is_alive():
                p.kill()
            p.join()


def test_a_rank_killed_while_rank_0_is_busy_longer_than_the_bound_is_lost_not_silent(tmp_path):
    job = Job(tmp_path, torchrun=False)
    try:
        job.beaten(2)
        os.kill(job.ranks[1].pid, signal.SIGKILL)   # (the OOM killer)
        job.waited.wait(1.4 * BOUND_S)   # (rank 0 busy: no collective meanwhile)
        codes = job.end()
    finally:
        job.close()
    assert codes == [1, -signal.SIGKILL]
    line = (tmp_path / "line0.txt").read_text()   # (before: none, "Error: stopped: …")
    assert line.startswith(
        "rank 1 was lost while the run started, before training: nothing was trained, nothing "
        "is saved (gloo: "), line
    assert line.endswith(": rank 1 ended or stopped answering, its own lines say why; run the "
                         "same torchrun command again)"), line


def test_under_torchrun_its_agent_stopped_is_no_ranks_silence(tmp_path):
    """A real torchrun run (bound 3 s, its agent stopped for 8 s) so ended at its epoch 14
    while rank 0 trained: `rank 0 was silent for 3.1 s …: stopped, hung, or its machine
    frozen or cut off`."""
    job = Job(tmp_path, torchrun=True)
    try:
        job.beaten(2)
        os.kill(job.agent.pid, signal.SIGSTOP)   # (Ctrl-Z)
        job.waited.wait(1.4 * BOUND_S)   # (the stop itself)
        os.kill(job.agent.pid, signal.SIGCONT)   # (fg)
        job.beaten(3)   # (both ranks go on beating)
        codes = job.end()
    finally:
        job.close()
    assert codes == [0, 0], [(tmp_path / f"line{r}.txt").read_text() for r in (0, 1)
                             if (tmp_path / f"line{r}.txt").exists()]


def test_silent_rank_minutes_past_what_a_thread_can_wait_is_refused(tiny_config):
    """1e10 minutes ("never"): each rank's two heartbeat threads died at the start in an
    OverflowError traceback (a wait past threading.TIMEOUT_MAX), printed by every rank."""
    from trainer.config import load_config
    from trainer.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        load_config(tiny_config(**{"train.silent_rank_minutes": 1e10}))
    assert str(refused.value) == ("train.silent_rank_minutes must be at most 43200 (30 days; "
                                  "0 = off), got 1e+10")
    assert load_config(tiny_config(**{"train.silent_rank_minutes": 43200})) is not None
