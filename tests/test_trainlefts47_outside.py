"""trainlefts47 (4): multi-machine DDP, ``--resume PATH`` where PATH is outside rank 0's run
folder (a backup, a copy on rank 0's Drive mount). Every other machine made rank 0's folder
path (``os.makedirs``) and fetched rank 0's bytes there: files written outside its run
folder, and on a machine without rank 0's mount a local ``/content/drive/MyDrive/…`` that
later blocks mounting there (trainatk47). Now such a machine loads PATH only where it holds
rank 0's very bytes there (a shared file system), and else fetches them into its own run
folder, as a hidden copy removed once every rank has loaded: nothing is made at PATH.

Two "machines" on one host (test_attack_ddp19's scaffolding: gloo, one rank each, the
emulator, the real DriveStore); rank 0's file is moved away while the other machine looks,
as that machine does not have it."""
from __future__ import annotations

import json
import os

from test_attack_ddp19 import LOGS, _free_port, _sidecar, _state


def _machine(rank: int, port: int, env: dict, root: str) -> None:
    import datetime
    import types

    import torch
    import torch.distributed as dist

    os.environ.update(env)
    torch.set_num_threads(1)
    from trainer import distributed, resume
    from trainer.checkpoint import load_checkpoint
    from trainer.drive import DriveFolder

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2, timeout=datetime.timedelta(seconds=40))
    info = distributed.DistInfo(rank=rank, world_size=2, local_rank=0)
    out_dir = os.path.join(root, f"machine{rank}", "logs")
    os.makedirs(out_dir, exist_ok=True)
    given = os.path.join(root, "rank0-backups", "ep4.pt")
    if rank == 0:
        measure = resume.chosen_bytes

        def measure_then_hide(*args, **kwargs):   # (machine 1 does not have rank 0's file)
            chosen = measure(*args, **kwargs)
            os.rename(given, given + ".away")
            return chosen

        resume.chosen_bytes = measure_then_hide
    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=out_dir))
    drive = DriveFolder(f"drive:{LOGS}", out_dir) if rank == 0 else None
    result: dict = {}
    try:
        start = resume.choose(cfg, given, info, drive)
        dist.barrier()   # (machine 1 has looked: rank 0's file back in place)
        if rank == 0:
            result["made"] = sorted(os.listdir(os.path.dirname(given)))
            os.replace(given + ".away", given)
        dist.barrier()
        state = load_checkpoint(start.path)
        result["w"] = float(state["model"]["w"][0])
        result["path"] = start.path
        resume.loaded(start, info)
    except Exception as exc:   # noqa: BLE001 (recorded for the test)
        result["error"] = f"{type(exc).__name__}: {exc}"
    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()
    with open(os.path.join(root, f"result{rank}.json"), "w") as fh:
        json.dump(result, fh)


def test_other_machines_fetch_into_their_own_run_folder_never_rank0s_path(
        emulator, drive_env, local_state, tmp_path):
    import torch.multiprocessing as mp

    v1 = _state(4, 1)
    emulator.add_file(f"{LOGS}/epoch_004.pt", v1)
    emulator.add_file(f"{LOGS}/epoch_004.json", _sidecar(v1, 4))
    (tmp_path / "rank0-backups").mkdir()
    (tmp_path / "rank0-backups" / "ep4.pt").write_bytes(v1)
    env = {k: os.environ[k] for k in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN",
                                      "DRIVESTAGE_STATE_DIR", "DRIVESTAGE_RETRY_BASE",
                                      "DRIVESTAGE_RETRY_CAP")}
    env.update(OMP_NUM_THREADS="1")
    mp.set_forkserver_preload(["torch", "trainer.resume", "trainer.drive"])
    mp.start_processes(_machine, args=(_free_port(), env, str(tmp_path)), nprocs=2, join=True,
                       start_method="forkserver")
    r0, r1 = (json.loads((tmp_path / f"result{r}.json").read_text()) for r in (0, 1))
    assert r0["w"] == r1["w"] == 1.0, (r0, r1)            # rank 0's bytes on both
    assert r0["made"] == ["ep4.pt.away"], r0               # nothing made at rank 0's path
    mine = tmp_path / "machine1" / "logs"
    assert os.path.dirname(r1["path"]) == str(mine), r1   # fetched into its own run folder
    assert os.listdir(mine) == []                          # and removed once all loaded
