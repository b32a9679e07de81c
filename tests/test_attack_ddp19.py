"""Multi-machine DDP resume: every rank loads exactly the bytes rank 0 chose.

Rank 0 chooses the checkpoint; the other machines used to pull ``drive:<path>`` *by name*
when the file was missing, and to load any local file of that name. Between rank 0's choice
and their pull, another runtime can push a new version of that name (or prune it); a machine
can hold an older file of that name (it was rank 0 of an earlier start). Either way the ranks
loaded different bytes: DDP then averages the gradients of different models, silently. Now
rank 0 sends the bytes' md5, size and Drive file id; the others fetch by id, verify, never
use (nor overwrite) a local file of other bytes, and every rank fails with one line together
when the chosen bytes are gone.
"""
from __future__ import annotations

import hashlib
import io
import json
import os

import pytest
import torch

LOGS = "Models/run/logs"
RUN = "20261204-020000-ab12"


def _state(epoch: int, marker: int = 0) -> bytes:
    """A minimal full checkpoint (what load_checkpoint accepts); ``marker`` makes other bytes
    of the same position (another runtime's version of the same name)."""
    buf = io.BytesIO()
    torch.save({"format_version": 2, "model": {"w": torch.full((64,), float(marker))},
                "optimizer": {}, "epoch": epoch, "iteration": 2 * epoch, "epoch_iteration": 0,
                "config": {}, "run": RUN}, buf)
    return buf.getvalue()


def _sidecar(data: bytes, epoch: int) -> bytes:
    return json.dumps({"format": 2, "epoch": epoch, "iteration": 2 * epoch, "epoch_iteration": 0,
                       "run": RUN, "md5": hashlib.md5(data).hexdigest(),
                       "size": len(data)}).encode()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _chosen_on_drive(emulator, data: bytes, name: str = "epoch_004.pt"):
    """What rank 0 sends after choosing ``LOGS/name`` (holding ``data``) on Drive."""
    from drivestage.remote import open_store
    from trainer.resume import Chosen

    store, path = open_store(f"drive:{LOGS}/{name}")
    entry = store.resolve(path)
    assert entry.md5 == _md5(data)
    return Chosen(where=f"drive:{LOGS}/{name}", md5=_md5(data), size=len(data), entry=entry)


@pytest.fixture
def client(emulator, drive_env, local_state):
    """The real googleapiclient service, to change Drive as another runtime does."""
    from drivestage.drive import connect

    return connect(api_root=emulator.url, token="test-token").service


def _replace_in_place(client, file_id: str, data: bytes) -> None:
    """A new version under the same id (an autosave overwritten in place, a Contributor's push)."""
    from googleapiclient.http import MediaInMemoryUpload

    client.files().update(fileId=file_id, media_body=MediaInMemoryUpload(
        data, mimetype="application/octet-stream")).execute()


def test_a_version_replaced_in_place_after_rank0_chose_fails_with_one_line(emulator, client,
                                                                            tmp_path):
    from trainer.errors import CheckpointError
    from trainer.resume import ensure_local_checkpoint

    v1, v2 = _state(4, 1), _state(4, 2)
    emulator.add_file(f"{LOGS}/epoch_004.pt", v1)
    chosen = _chosen_on_drive(emulator, v1)
    _replace_in_place(client, chosen.entry.id, v2)   # another runtime saved epoch 4 again
    target = tmp_path / "machine-b" / "logs" / "epoch_004.pt"
    target.parent.mkdir(parents=True)
    with pytest.raises(CheckpointError) as err:
        ensure_local_checkpoint(str(target), chosen)
    assert str(err.value).startswith(f"drive:{LOGS}/epoch_004.pt changed on Drive while the run "
                                     f"started")
    assert str(err.value).endswith("; run again")
    assert os.listdir(target.parent) == []   # neither the other bytes nor a partial stay


def test_a_version_pruned_and_pushed_anew_after_rank0_chose_fails_with_one_line(emulator, client,
                                                                                 tmp_path):
    from trainer.errors import CheckpointError
    from trainer.resume import ensure_local_checkpoint

    v1, v2 = _state(4, 1), _state(4, 2)
    emulator.add_file(f"{LOGS}/epoch_004.pt", v1)
    chosen = _chosen_on_drive(emulator, v1)
    client.files().delete(fileId=chosen.entry.id).execute()
    emulator.add_file(f"{LOGS}/epoch_004.pt", v2)    # the same name, another file
    target = tmp_path / "machine-b" / "logs" / "epoch_004.pt"
    target.parent.mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"changed on Drive while the run started.*; run again$"):
        ensure_local_checkpoint(str(target), chosen)
    assert os.listdir(target.parent) == []


def test_another_file_of_the_same_name_pushed_alongside_is_not_what_is_fetched(emulator, drive_env,
                                                                              local_state, tmp_path):
    # Pulled by name, Drive's newest "epoch_004.pt" (v2) came: another model than rank 0's.
    from trainer.resume import ensure_local_checkpoint

    v1, v2 = _state(4, 1), _state(4, 2)
    emulator.add_file(f"{LOGS}/epoch_004.pt", v1)
    chosen = _chosen_on_drive(emulator, v1)
    emulator.add_file(f"{LOGS}/epoch_004.pt", v2)
    target = tmp_path / "machine-b" / "logs" / "epoch_004.pt"
    target.parent.mkdir(parents=True)
    got = ensure_local_checkpoint(str(target), chosen)
    assert got == str(target) and target.read_bytes() == v1
    assert os.listdir(target.parent) == ["epoch_004.pt"]


def test_a_local_file_of_that_name_with_other_bytes_is_kept_and_not_loaded(emulator, drive_env,
                                                                           local_state, tmp_path):
    # Machine B was rank 0 of an earlier start: its own best.pt is another state. Loading it
    # would diverge; overwriting it would lose it.
    from trainer.resume import ensure_local_checkpoint

    v1, mine = _state(4, 1), _state(3, 7)
    emulator.add_file(f"{LOGS}/best.pt", v1)
    chosen = _chosen_on_drive(emulator, v1, "best.pt")
    folder = tmp_path / "machine-b" / "logs"
    folder.mkdir(parents=True)
    (folder / "best.pt").write_bytes(mine)
    (folder / "best.json").write_bytes(_sidecar(mine, 3))
    got = ensure_local_checkpoint(str(folder / "best.pt"), chosen)
    assert open(got, "rb").read() == v1
    assert (folder / "best.pt").read_bytes() == mine              # the user's file, untouched
    assert (folder / "best.json").read_bytes() == _sidecar(mine, 3)
    # The copy is hidden and never mirrored (".*.tmp"), and no checkpoint listing sees it.
    assert os.path.basename(got).startswith(".") and got.endswith(".tmp")
    from trainer import checkpoint as ckpt

    assert [c.described.name for c in ckpt.list_checkpoints(str(folder))] == ["best.pt"]
    # Asked again (a rerun), the copy already holds the bytes: no download.
    emulator.clear_requests()
    assert ensure_local_checkpoint(str(folder / "best.pt"), chosen) == got
    assert [r for r in emulator.requests if "alt=media" in r.path] == []
    from trainer.resume import drop_side_copy

    drop_side_copy(got)
    assert sorted(os.listdir(folder)) == ["best.json", "best.pt"]


def test_the_same_bytes_already_here_make_no_request(emulator, drive_env, local_state, tmp_path):
    from trainer.resume import ensure_local_checkpoint

    v1 = _state(4, 1)
    emulator.add_file(f"{LOGS}/epoch_004.pt", v1)
    chosen = _chosen_on_drive(emulator, v1)
    target = tmp_path / "shared-fs" / "epoch_004.pt"
    target.parent.mkdir()
    target.write_bytes(v1)
    emulator.clear_requests()
    assert ensure_local_checkpoint(str(target), chosen) == str(target)
    assert emulator.requests == []


def test_rank0s_local_checkpoint_that_drive_lacks_is_refused_elsewhere(tmp_path):
    # --resume auto found it in rank 0's out_dir; Drive has no copy of those bytes.
    from trainer.errors import CheckpointError
    from trainer.resume import Chosen, ensure_local_checkpoint

    v1 = _state(4, 1)
    chosen = Chosen(where="/content/logs/last.pt", md5=_md5(v1), size=len(v1))
    target = tmp_path / "last.pt"
    with pytest.raises(CheckpointError) as err:
        ensure_local_checkpoint(str(target), chosen)
    assert str(err.value) == (
        f"rank 0 resumes from /content/logs/last.pt (md5 {_md5(v1)}), which this machine does "
        f"not have at {target} and Drive does not hold; put that file there on every machine, "
        f"or resume from a checkpoint on Drive (--resume auto with drive.logs set)")
    target.write_bytes(_state(4, 2))
    with pytest.raises(CheckpointError, match=r"this machine holds other bytes at .*last\.pt"):
        ensure_local_checkpoint(str(target), chosen)
    assert target.read_bytes() == _state(4, 2)


def test_rank0_sends_the_drive_file_only_when_it_holds_the_same_bytes(emulator, drive_env,
                                                                      local_state, tmp_path):
    from drivestage.remote import open_store
    from trainer.resume import chosen_bytes

    v1 = _state(4, 1)
    emulator.add_file(f"{LOGS}/epoch_004.pt", v1)
    store, path = open_store(f"drive:{LOGS}/epoch_004.pt")
    entry = store.resolve(path)
    here = tmp_path / "epoch_004.pt"
    here.write_bytes(v1)
    got = chosen_bytes(str(here), str(here), entry)
    assert (got.md5, got.size, got.entry) == (_md5(v1), len(v1), entry)
    here.write_bytes(_state(4, 2))   # rank 0's local file is not that Drive file's bytes
    got = chosen_bytes(str(here), str(here), entry)
    assert got.md5 == _md5(_state(4, 2)) and got.entry is None


# --------------------------------------------------------------- two machines on one host

def _free_port() -> int:
    from _ports import free_port   # (not an ephemeral port: see there)

    return free_port()


def _machine(rank: int, port: int, env: dict, root: str, scenario: str) -> None:
    """One "machine" (its own out_dir), one rank each: rank 0 chooses from Drive; ``scenario``
    says what happens on Drive right after its choice. Writes what it loaded, or its error."""
    import datetime
    import types

    import torch.distributed as dist

    os.environ.update(env)
    torch.set_num_threads(1)
    from trainer import distributed, resume
    from trainer.checkpoint import load_checkpoint
    from trainer.drive import DriveFolder

    # A bounded timeout: a rank left waiting fails the test in seconds, not 30 minutes.
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2, timeout=datetime.timedelta(seconds=40))
    # Two machines: each rank is its machine's local rank 0.
    info = distributed.DistInfo(rank=rank, world_size=2, local_rank=0)
    out_dir = os.path.join(root, f"machine{rank}", "logs")
    os.makedirs(out_dir, exist_ok=True)
    if rank == 1 and scenario == "stale-local":
        with open(os.path.join(out_dir, "epoch_004.pt"), "wb") as fh:
            fh.write(_state(4, 9))       # this machine's own older file of that name
    if scenario == "failures":
        _fail_on_one_machine(rank, info, root)
        return
    if rank == 0:
        decide = resume._decide

        def decide_then_change(*args, **kwargs):
            start = decide(*args, **kwargs)
            if scenario in ("in-place", "pruned"):
                from drivestage.drive import connect

                service = connect(api_root=env["DRIVESTAGE_API_ROOT"], token="test-token").service
                fid = start.safe.entry.id
                if scenario == "in-place":
                    _replace_in_place(service, fid, _state(4, 2))
                else:
                    service.files().delete(fileId=fid).execute()
            return start

        resume._decide = decide_then_change
    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=out_dir))
    drive = DriveFolder(f"drive:{LOGS}", out_dir) if rank == 0 else None
    result: dict = {}
    try:
        start = resume.choose(cfg, "auto", info, drive)
        state = load_checkpoint(start.path)
        result["w"] = float(state["model"]["w"][0])
        result["path"] = start.path
        resume.loaded(start, info)
    except Exception as exc:   # noqa: BLE001 (recorded for the test)
        result["error"] = f"{type(exc).__name__}: {exc}"
    try:
        dist.barrier()   # both ranks got here: nobody was left waiting in a collective
    finally:
        dist.destroy_process_group()
    with open(os.path.join(root, f"result{rank}.json"), "w") as fh:
        json.dump(result, fh)


def _fail_on_one_machine(rank: int, info, root: str) -> None:
    """Staging fails on machine 1 only; then rank 0 cannot choose. Each must fail every rank
    (the barrier after each proves nobody went on to wait in a collective alone)."""
    import torch.distributed as dist

    from trainer import distributed, resume
    from trainer.errors import CheckpointError

    errors = []
    try:
        with distributed.main_first(info, local=True):
            if rank == 1:
                raise OSError("No space left on device")
    except Exception as exc:   # noqa: BLE001
        errors.append(f"{type(exc).__name__}: {exc}")
    dist.barrier()

    def cannot(*args, **kwargs):
        raise CheckpointError("no checkpoint of run x on drive:L can be read")

    resume._decide = cannot
    try:
        resume.choose(None, "auto", info, None)
    except Exception as exc:   # noqa: BLE001
        errors.append(f"{type(exc).__name__}: {exc}")
    dist.barrier()
    dist.destroy_process_group()
    with open(os.path.join(root, f"result{rank}.json"), "w") as fh:
        json.dump(errors, fh)


def test_a_failure_on_one_machine_fails_every_rank(tmp_path):
    import torch.multiprocessing as mp

    mp.set_forkserver_preload(["torch", "trainer.resume", "trainer.drive"])
    mp.start_processes(_machine, args=(_free_port(), {"OMP_NUM_THREADS": "1"}, str(tmp_path),
                                       "failures"), nprocs=2, join=True, start_method="forkserver")
    r0, r1 = (json.loads((tmp_path / f"result{r}.json").read_text()) for r in (0, 1))
    assert r0 == ["RuntimeError: staging failed on another machine; see its log",
                  "CheckpointError: no checkpoint of run x on drive:L can be read"]
    assert r1 == ["OSError: No space left on device",
                  "CheckpointError: rank 0 could not choose where to start: no checkpoint of "
                  "run x on drive:L can be read"]


@pytest.mark.parametrize("scenario", ["in-place", "pruned", "stale-local"])
def test_two_machines_load_the_same_bytes_or_fail_together(emulator, drive_env, local_state,
                                                         tmp_path, scenario):
    import torch.multiprocessing as mp

    v1 = _state(4, 1)
    emulator.add_file(f"{LOGS}/epoch_004.pt", v1)
    emulator.add_file(f"{LOGS}/epoch_004.json", _sidecar(v1, 4))
    env = {k: os.environ[k] for k in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN",
                                      "DRIVESTAGE_STATE_DIR", "DRIVESTAGE_RETRY_BASE",
                                      "DRIVESTAGE_RETRY_CAP")}
    env.update(OMP_NUM_THREADS="1")
    mp.set_forkserver_preload(["torch", "trainer.resume", "trainer.drive"])
    mp.start_processes(_machine, args=(_free_port(), env, str(tmp_path), scenario), nprocs=2,
                       join=True, start_method="forkserver")
    r0, r1 = (json.loads((tmp_path / f"result{r}.json").read_text()) for r in (0, 1))
    if scenario == "stale-local":
        assert r0["w"] == r1["w"] == 1.0, (r0, r1)    # rank 0's bytes on both
        mine = tmp_path / "machine1" / "logs"
        assert (mine / "epoch_004.pt").read_bytes() == _state(4, 9)   # kept, not loaded
        assert sorted(os.listdir(mine)) == ["epoch_004.pt"]          # the copy is gone after
        return
    # Rank 0 loaded v1; rank 1 would have loaded v2 (in place) or failed alone (pruned).
    want = (f"CheckpointError: drive:{LOGS}/epoch_004.pt changed on Drive while the run started")
    assert r0.get("error", "").startswith(want), r0
    assert r1.get("error") == r0["error"], (r0, r1)
    assert r0["error"].endswith("; run again")
