"""attacktr32: trainer.silence (hang32's heartbeats) against a rank that is dead, not silent.

A rank killed (SIGKILL, the kernel's OOM killer) while rank 0 was busy with no collective for
longer than ``train.silent_rank_minutes`` (a long download of the data, a long evaluation)
was judged silent once its beats stopped; the kernel had closed its connections, and gloo
this rank's ends of them, so no socket to it was left to shut, and the judge took that for
"its addresses never came": ``Error: stopped: rank 1 was silent …; nothing could be saved``
and ``os._exit(1)``, in the middle of rank 0's work. A collective meets a dead rank at once
by itself (trainer.peer_loss: rank 0 saves, the line names the phase); now the judge leaves
such a rank to it.

Real forked gloo ranks (tests/test_messages_hang32.py's helpers), bound 2.5 s.
"""
from __future__ import annotations

import datetime
import multiprocessing
import os
import re
import signal
import threading

import pytest

from test_messages_hang32 import BOUND_S, _end, _fit, _port, _run_ranks


def _staging_long(rank: int, port: int, config: str, out: str, staging) -> None:
    """Rank 0 stages the data for 1.4 bounds (a slow download; rank 1 waits in a collective)
    once it heard rank 1 beat; ``staging`` is set as that begins."""
    import torch.distributed as dist

    from trainer import engine, silence

    if rank == 0:
        stage = engine.stage_data

        def slow(*args, **kwargs):
            store = dist.TCPStore("127.0.0.1", port, is_master=False, wait_for_workers=False,
                                  timeout=datetime.timedelta(seconds=30))
            keys = f"trainer/alive//0/{silence._fits}/beat/"   # (Watcher._prefix)
            waited = threading.Event()
            while store.add(f"{keys}1", 0) < 1 and not waited.wait(0.05):
                pass
            since = store.add(f"{keys}0", 0)   # (two rounds of rank 0 since: rank 1 read)
            while store.add(f"{keys}0", 0) < since + 2 and not waited.wait(0.05):
                pass
            staging.set()
            waited.wait(1.4 * BOUND_S)   # (the slowness itself)
            with open(os.path.join(out, "staged.txt"), "w") as f:
                f.write("whole")
            return stage(*args, **kwargs)

        engine.stage_data = slow
    _fit(rank, port, config, out)


def test_a_rank_killed_while_rank_0_stages_the_data_longer_than_the_bound_is_lost_not_silent(
        tiny_config, tmp_path):
    config = tiny_config(**{"train.batch_size": 4, "train.freeze_epochs": 0, "train.epochs": 1,
                            "train.silent_rank_minutes": BOUND_S / 60})
    staging = multiprocessing.get_context("fork").Event()
    ranks = _run_ranks(_staging_long, _port(), config, str(tmp_path), staging)
    assert staging.wait(60)
    os.kill(ranks[1].pid, signal.SIGKILL)   # (the OOM killer)
    codes = _end(ranks, live=0)

    assert codes == [1, -signal.SIGKILL]
    assert (tmp_path / "staged.txt").read_text() == "whole"   # (rank 0 was not cut off)
    line = (tmp_path / "line0.txt").read_text()
    assert re.fullmatch(
        r"rank 1 was lost while the data was staged, before training: nothing was trained, "
        r"nothing is saved \(gloo: (Connection closed by peer \[127\.0\.0\.1\]:\d+|Read error "
        r"\[127\.0\.0\.1\]:\d+: Connection reset by peer|[^()]*Broken pipe): rank 1 ended or "
        r"stopped answering, its own lines say why; run the same torchrun command again\)",
        line), line
    assert sorted(os.listdir(tmp_path / "logs")) == []


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


def _agent(port: int) -> None:
    """torchrun's agent, as far as the ranks see it: the job's TCP store."""
    import torch.distributed as dist

    store = dist.TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False)
    threading.Event().wait(120)
    del store


def _idle_rank(rank: int, port: int, out: str, go) -> None:
    """A rank of a torchrun job (the agent's store) in a collective, rank 0 joining it once
    ``go`` is set, under trainer.silence's watch; its line into ``line<rank>.txt``."""
    from types import SimpleNamespace

    import torch.distributed as dist

    from trainer import distributed, silence
    from trainer.errors import TrainingInterrupted

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
                      GROUP_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      TORCHELASTIC_RUN_ID="a32", TORCHELASTIC_RESTART_COUNT="0",
                      TORCHELASTIC_USE_AGENT_STORE="True")
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    cfg = SimpleNamespace(train=SimpleNamespace(silent_rank_minutes=AGENT_BOUND_S / 60))
    try:
        with silence.watch(cfg, distributed.env_info()):
            if rank == 0:
                go.wait(60)
            dist.barrier()
    except TrainingInterrupted as exc:
        with open(os.path.join(out, f"line{rank}.txt"), "w") as f:
            f.write(str(exc))
        os._exit(exc.exit_code)
    os._exit(0)


#: The bound of the agent's test (idle ranks: no training to slow their beats).
AGENT_BOUND_S = 2.0


def test_under_torchrun_its_agent_stopped_is_no_ranks_silence(tmp_path):
    """A Ctrl-Z in the terminal of ``torchrun`` stops its agent alone (its ranks run in
    sessions of their own, and train on), and with it the store. Rank 1 took rank 0 for
    silent once the store had not answered for the bound, and ended the run (`rank 0 was
    silent for … s …: stopped, hung, or its machine frozen or cut off`): a real torchrun
    run ended so at its epoch 14 while rank 0 trained."""
    import torch.distributed as dist

    from trainer import silence

    fork, port = multiprocessing.get_context("fork"), _port()
    agent = fork.Process(target=_agent, args=(port,))
    agent.start()
    go = fork.Event()
    ranks = [fork.Process(target=_idle_rank, args=(r, port, str(tmp_path), go)) for r in (0, 1)]
    for p in ranks:
        p.start()
    store = dist.TCPStore("127.0.0.1", port, is_master=False, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=30))
    keys = f"trainer/alive/a32/0/{silence._fits + 1}/beat/"   # (Watcher._prefix, in a rank)
    waited = threading.Event()

    def beats() -> list:
        return [store.add(f"{keys}{r}", 0) for r in (0, 1)]

    try:
        while min(beats()) < 2:
            waited.wait(0.05)
        os.kill(agent.pid, signal.SIGSTOP)   # (Ctrl-Z)
        waited.wait(1.4 * AGENT_BOUND_S)   # (the stop itself)
        os.kill(agent.pid, signal.SIGCONT)   # (fg)
        since, alive = beats(), lambda: all(p.is_alive() for p in ranks)
        while alive() and min(b - s for b, s in zip(beats(), since)) < 3:
            waited.wait(0.05)   # (both ranks go on beating, or one ended)
        go.set()
        for p in ranks:
            p.join(60)
    finally:
        for p in (*ranks, agent):
            if p.is_alive():
                p.kill()
            p.join()
    assert [p.exitcode for p in ranks] == [0, 0], [
        (tmp_path / f"line{r}.txt").read_text() for r in (0, 1)
        if (tmp_path / f"line{r}.txt").exists()]
