"""attack23train: trainer23's ``--resume auto`` fallback attacked.

* When the bound (:data:`trainer.resume_fallback.MAX_TRIED`) is hit, the refusal said "resume
  an earlier checkpoint with --resume PATH (trainer status and drivestage ls list them)":
  ``trainer status`` shows only the run's newest checkpoint on Drive (the bad one), and a
  ``drive:`` path is refused by ``--resume``. The refusal now names the next older
  checkpoint it did not look at and the exact option that goes on from it (for one on Drive:
  the pull first); doing just that resumes.

Real checkpoint files of a real (small) model, the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from _sweep import ALL
from test_trainer22_hostile import _nan_model, _small_run
from test_trainer23_fallback import _bad_newest_on_drive, _choose, _drive_listing, _save


def _four_bad_then_a_good_one(run, logs) -> None:
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    for epoch in (2, 3, 4, 5):
        _save(run, logs, f"epoch_{epoch:03d}.pt", epoch, 1000.0 + epoch, _nan_model)


def test_the_bounded_refusal_names_the_next_checkpoint_and_its_option(tiny_config, tmp_path):
    """Epochs 5, 4, 3 bad (vetted), 2 bad (not looked at), 1 good. The refusal names
    epoch_002.pt, the next older one, with ``--resume <its path>``; that command restores it
    (then restore vets it: here it refuses, naming it). Going on from epoch_001.pt the same
    way works."""
    from trainer.errors import CheckpointError
    from trainer.resume import restore

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _four_bad_then_a_good_one(run, logs)
    with pytest.raises(CheckpointError) as refused:
        _choose(logs, "auto", run)
    text = str(refused.value)
    nxt = logs / "epoch_002.pt"
    assert "trainer status" not in text, text     # it shows one checkpoint: the bad newest
    assert text.endswith(f"; the next older one, {nxt}, was not looked at: to go on from it, "
                         f"run the same command with --resume {nxt} (it is checked then), or "
                         f"start a new run in a new train.out_dir"), text
    start = _choose(logs, str(nxt), run)
    with pytest.raises(CheckpointError, match=f"cannot resume from {nxt}: its model weights"):
        restore(_small_run(tiny_config, tmp_path / "fresh"), start)
    good = _choose(logs, str(logs / "epoch_001.pt"), run)
    fresh = _small_run(tiny_config, tmp_path / "fresh2")
    restore(fresh, good)
    assert fresh.state.pos.epoch == 1


def test_the_bounded_refusal_on_drive_says_to_pull_first(
        emulator, drive_env, local_state, tiny_config, tmp_path, monkeypatch):
    """A fresh machine, Drive holding the same five states: the next older one is on Drive,
    which --resume does not take; the refusal says to pull it, and then which --resume. The
    pull and that --resume, done as said, go on from it."""
    import _cli
    from trainer.drive import DriveFolder
    from trainer.errors import CheckpointError
    from trainer.resume import restore

    spec = "drive:Models/a23/logs"
    there = tmp_path / "elsewhere"
    run = _small_run(tiny_config, there)
    _save(run, there, "epoch_001.pt", 1, 1000.0)
    for epoch in (3, 4, 5):
        _save(run, there, f"epoch_{epoch:03d}.pt", epoch, 1000.0 + epoch, _nan_model)
    DriveFolder(spec, str(there)).push()
    logs = tmp_path / "logs"
    logs.mkdir()
    with pytest.raises(CheckpointError) as refused:
        _choose(logs, "auto", run, drive=DriveFolder(spec, str(logs)))
    text = str(refused.value)
    assert text.endswith(f"; the next older one, {spec}/epoch_001.pt, was not looked at: to "
                         f"go on from it, pull it (drivestage pull {spec}/epoch_001.pt "
                         f"./weights) and run the same command with --resume "
                         f"weights/epoch_001.pt (it is checked then), or start a new run in a "
                         f"new train.out_dir"), text
    # Each copy fetched to be looked at is removed, and the next one is not fetched at all
    # (it was left in the run folder: the same command run again described it and went on
    # from it, silently). The same command refuses the same way again.
    assert not [n for n in os.listdir(logs) if n.endswith(".pt")]
    with pytest.raises(CheckpointError) as again:
        _choose(logs, "auto", run, drive=DriveFolder(spec, str(logs)))
    assert str(again.value) == text
    monkeypatch.chdir(tmp_path)
    _cli.ok("pull", f"{spec}/epoch_001.pt", "./weights")
    start = _choose(logs, "weights/epoch_001.pt", run, drive=DriveFolder(spec, str(logs)))
    fresh = _small_run(tiny_config, tmp_path / "fresh")
    restore(fresh, start)
    assert fresh.state.pos.epoch == 1


def test_a_ctrl_c_while_a_drive_copy_is_looked_at_leaves_no_copy(
        emulator, drive_env, local_state, tiny_config, tmp_path, caplog):
    """Ctrl-C (a real SIGINT) while --resume auto looks at the bad newest fetched from Drive:
    its copy stayed in the run folder without a sidecar; the next --resume auto gave it one,
    dated then, warned of it as a file of this folder "kept as it is", and the mirror's push
    rewrote Drive's sidecar of it (another save time). Now the copy goes with the Ctrl-C; the
    next run falls back as the first would have, and its push leaves Drive's files as they
    were."""
    import signal

    from trainer.drive import DriveFolder
    from test_trainer23_fallback import _vet

    spec = "drive:Models/a23c/logs"
    run, there = _bad_newest_on_drive(tiny_config, tmp_path, spec)
    before = _drive_listing(emulator)
    logs = tmp_path / "logs"
    logs.mkdir()
    vet = _vet(run)

    seen = []

    def interrupted(state, where):
        seen.extend(os.listdir(logs))           # while looked at: under a temporary name only
        os.kill(os.getpid(), signal.SIGINT)       # Ctrl-C, delivered at the next bytecode
        vet(state, where)

    from types import SimpleNamespace

    from trainer import distributed
    from trainer.resume import choose
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with pytest.raises(KeyboardInterrupt):
        choose(cfg, "auto", distributed.env_info(), DriveFolder(spec, str(logs)), vet=interrupted)
    assert sorted(os.listdir(logs)) == []
    # (What a kill, SIGKILL or SIGTERM, leaves then: the slow test below kills a child there.)
    assert len(seen) == 1 and seen[0].startswith(".epoch_002.pt.") and \
        seen[0].endswith(".tmp"), seen
    start = _choose(logs, "auto", run, drive=DriveFolder(spec, str(logs)))
    assert start.where == f"{spec}/epoch_001.pt"
    assert sorted(n for n in os.listdir(logs) if not n.startswith(".")) == \
        ["epoch_001.json", "epoch_001.pt"]
    DriveFolder(spec, str(logs)).push()            # as the run's mirror does
    assert _drive_listing(emulator) == before


def test_a_fallback_past_a_bad_state_on_drive_records_no_branch(
        emulator, drive_env, local_state, tiny_config, tmp_path, caplog):
    """This folder holds epoch_001.pt; another machine went on and pushed epoch_002.pt, bad.
    --resume auto fetches it, passes over it and goes on from epoch_001.pt here, as the
    fallback past a bad local file does: no branch. Before, the bad state stayed among the
    states seen, and the start recorded a branch ("resumed on purpose from epoch_001.pt, not
    the run's newest (epoch_002.pt)"): re-dated epoch_001's sidecar and pushed it with
    retention, which ranked the bad line as left behind and deleted epoch_002.pt on Drive,
    the file the warning had just said Drive keeps (and a failed push of that record refused
    to start the run)."""
    import logging

    from drivestage.retention_policy import RetentionPolicy
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder
    from trainer.resume import record_branch
    from trainer.writer import BackgroundWriter

    spec = "drive:Models/a23b/logs"
    run, there = _bad_newest_on_drive(tiny_config, tmp_path, spec)
    logs = tmp_path / "logs"
    logs.mkdir()
    ckpt.copy_checkpoint(str(there / "epoch_001.pt"), str(logs / "epoch_001.pt"))
    before = _drive_listing(emulator)
    local = sorted(os.listdir(logs))
    drive = DriveFolder(spec, str(logs), policy=RetentionPolicy(keep_last=1))
    with caplog.at_level(logging.INFO):
        start = _choose(logs, "auto", run, drive=drive)
        assert start.path == str(logs / "epoch_001.pt")
        writer = BackgroundWriter(str(logs), drive)
        try:
            recorded = record_branch(str(logs), start, start.run and
                                     ckpt.read_sidecar(start.path).run, writer)
        finally:
            writer.close(push=False)
    assert recorded is None
    assert not [r for r in caplog.records if "resumed on purpose" in r.getMessage()]
    assert _drive_listing(emulator) == before
    assert sorted(os.listdir(logs)) == local


_LOOKING_CHILD = """
import sys
from types import SimpleNamespace
from trainer import distributed
from trainer.drive import DriveFolder
from trainer.resume import choose

logs, spec = sys.argv[1], sys.argv[2]

def vet(state, where):       # the fetched copy is being looked at: say so, then wait
    print("looking at", where, flush=True)
    sys.stdin.read()

choose(SimpleNamespace(train=SimpleNamespace(out_dir=logs)), "auto", distributed.env_info(),
       DriveFolder(spec, logs), vet=vet)
"""


@pytest.mark.slow
@pytest.mark.skipif(not ALL, reason="a child killed for real (4 s): with DRIVESTAGE_TEST_SWEEP="
                                    "all; the Ctrl-C test checks the temporary name in-process")
def test_a_kill_while_a_drive_copy_is_looked_at_leaves_no_checkpoint_behind(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """SIGKILL (or SIGTERM: the trainer takes signals only once training begins) while
    --resume auto looks at the bad newest fetched from Drive. The copy lay in the run folder
    under its name, without a sidecar: the next run described it as this folder's killed
    save, dated then, and the mirror's push rewrote Drive's sidecar of it. Now a copy is
    looked at under a temporary name (never mirrored; removed by the folder's next atomic
    write once its process is gone), and takes its name only once chosen."""
    import subprocess
    import sys

    from _kill import sigkill_when
    from trainer.drive import DriveFolder

    spec = "drive:Models/a23k/logs"
    run, there = _bad_newest_on_drive(tiny_config, tmp_path, spec)
    before = _drive_listing(emulator)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", _LOOKING_CHILD, str(logs), spec], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    assert line == f"looking at {spec}/epoch_002.pt\n", line
    sigkill_when(proc, lambda: True)
    proc.stdin.close()
    assert not [n for n in os.listdir(logs) if not n.startswith(".")], os.listdir(logs)
    start = _choose(logs, "auto", run, drive=DriveFolder(spec, str(logs)))
    assert start.where == f"{spec}/epoch_001.pt"
    assert sorted(os.listdir(logs)) == ["epoch_001.json", "epoch_001.pt"]   # the copy swept
    DriveFolder(spec, str(logs)).push()            # as the run's mirror does
    assert _drive_listing(emulator) == before


def test_the_bounded_refusal_names_a_checkpoint_here_that_passed(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """This folder holds epoch_001.pt (good); another machine went on and pushed epochs 2 to
    5, all bad. --resume auto vets epoch_001.pt here (it passes), then Drive's three newest,
    and stops at the bound, as it should (a person chooses). The refusal said it "found no
    state to train on" and "older ones were not tried", and never named epoch_001.pt, which
    had passed; now it names it with the option that goes on from it."""
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder
    from trainer.errors import CheckpointError

    spec = "drive:Models/a23p/logs"
    there = tmp_path / "elsewhere"
    logs = tmp_path / "logs"
    logs.mkdir()
    run = _small_run(tiny_config, there)
    _save(run, there, "epoch_001.pt", 1, 1000.0)
    ckpt.copy_checkpoint(str(there / "epoch_001.pt"), str(logs / "epoch_001.pt"))
    for epoch in (2, 3, 4, 5):
        _save(run, there, f"epoch_{epoch:03d}.pt", epoch, 1000.0 + epoch, _nan_model)
    DriveFolder(spec, str(there)).push()
    with pytest.raises(CheckpointError) as refused:
        _choose(logs, "auto", run, drive=DriveFolder(spec, str(logs)))
    text = str(refused.value)
    here = logs / "epoch_001.pt"
    assert f"the next older one, {spec}/epoch_002.pt, was not looked at" in text, text
    assert text.endswith(f"; {here} passed the checks: --resume {here} goes on from it, "
                         f"further back; or start a new run in a new train.out_dir"), text


def test_the_fallback_never_goes_on_from_another_run_on_drive(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """Drive's folder holds run A (good, older) and run B (written last: its only state bad).
    A fresh machine's --resume auto passes over B's state and refuses (naming it); it never
    falls back to A, another run (what it did before trainer23 for a state that could not
    be read was the same: the run written last, or nothing). Holds; a guard."""
    from trainer.drive import DriveFolder
    from trainer.errors import CheckpointError

    spec = "drive:Models/a23r/logs"
    a, b = tmp_path / "run-a", tmp_path / "run-b"
    run = _small_run(tiny_config, a)
    _save(run, a, "epoch_001.pt", 1, 1000.0)
    _save(run, a, "epoch_002.pt", 2, 1500.0)
    DriveFolder(spec, str(a)).push()

    def other_run(state):
        state["run"] = "20261204-130000-cd34"
        _nan_model(state)

    _save(run, b, "epoch_003.pt", 3, 3000.0, other_run)
    DriveFolder(spec, str(b)).push()
    logs = tmp_path / "logs"
    logs.mkdir()
    with pytest.raises(CheckpointError) as refused:
        _choose(logs, "auto", run, drive=DriveFolder(spec, str(logs)))
    assert str(refused.value).startswith(f"cannot resume from {spec}/epoch_003.pt: its model "
                                         f"weights hold NaN"), str(refused.value)
    assert not [n for n in os.listdir(logs) if not n.startswith(".")]


def test_the_room_check_counts_autosaves_left_alone_above_the_start(tmp_path):
    """--resume auto fell back past the run's two newest autosaves (bad: kept as they are) to
    the last epoch's checkpoint. The room check took them for the two autosaves the run keeps
    ("those already in the folder take their space already") and counted none; but the writer
    leaves autosaves numbered above the one it writes alone, so the run's own two come on top
    of them: a disk with room for the epoch's files alone passed, and the first saves met the
    full disk. Now only the autosaves up to the start count as the run's own."""
    from trainer import room

    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("autosave_00000400.pt", "autosave_00000500.pt"):
        (logs / name).write_bytes(b"a bad state, kept")
    # (Epoch 2 the last: trainer24 counts what a longer run adds by its end too.)
    cfg = SimpleNamespace(train=SimpleNamespace(
        out_dir=str(logs), epochs=2, save_period=1, eval_period=100, save_minutes=5.0))
    size = 100 * (1 << 20)
    files_only = 3 * size                        # last.pt, epoch_002.pt and best.pt
    why = room.shortage(cfg, 1, size, free_bytes=lambda p: files_only, resumed_at=300)
    assert why is not None and ", with 2 autosaves of that size kept beside them " in why, why
    assert room.shortage(cfg, 1, size, free_bytes=lambda p: 5 * size, resumed_at=300) is None
    # Autosaves up to the start are the run's own older ones: replaced, not added to.
    assert room.shortage(cfg, 1, size, free_bytes=lambda p: files_only, resumed_at=600) is None


def _bad_here_another_on_drive(tiny_config, tmp_path, spec: str, drive_change):
    """epoch_001.pt (good) here and on Drive; epoch_002.pt here with NaN weights, and on
    Drive another one of that name, saved later (``drive_change`` applied: None, good):
    (the run, the folder it was pushed from, the run folder ``tmp_path/logs``)."""
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder

    there = tmp_path / "elsewhere"
    logs = tmp_path / "logs"
    logs.mkdir()
    run = _small_run(tiny_config, there)
    _save(run, there, "epoch_001.pt", 1, 1000.0)
    ckpt.copy_checkpoint(str(there / "epoch_001.pt"), str(logs / "epoch_001.pt"))
    _save(run, logs, "epoch_002.pt", 2, 2000.0, _nan_model)
    _save(run, there, "epoch_002.pt", 2, 2500.0, drive_change)
    DriveFolder(spec, str(there)).push()
    return run, there, logs


def test_a_bad_file_here_is_kept_when_drive_holds_another_bad_one_of_its_name(
        emulator, drive_env, local_state, tiny_config, tmp_path, caplog):
    """This folder: epoch_001.pt (good) and epoch_002.pt (NaN weights). Drive: epoch_001.pt and
    another machine's epoch_002.pt, saved later, bad too (other bytes). --resume auto passes
    over epoch_002.pt here ("it is kept as it is"), then fetches Drive's epoch_002.pt (further
    on than epoch_001.pt) to look at it: into this folder's epoch_002.pt, over the file just
    said to be kept, and, Drive's being bad too, deleted it with its sidecar. Now a copy is
    fetched beside a file of its name, never over it; both warnings hold."""
    from test_trainer22_hostile import _md5s, _optimizer_of_another_model
    from trainer.drive import DriveFolder

    spec = "drive:Models/a23s/logs"
    run, _, logs = _bad_here_another_on_drive(tiny_config, tmp_path, spec,
                                              _optimizer_of_another_model)
    before = _md5s(logs)
    start = _choose(logs, "auto", run, drive=DriveFolder(spec, str(logs)))
    assert start.path == str(logs / "epoch_001.pt")
    assert _md5s(logs) == before
    assert not [n for n in os.listdir(logs) if n.startswith(".")]   # no copy left either


def test_a_good_copy_on_drive_of_a_bad_file_here_takes_its_name(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """As above, but Drive's epoch_002.pt (another machine's, saved later) is good: fetched
    beside the bad one here, it takes the name once chosen (the run goes on from it, as from
    any checkpoint fetched), with Drive's sidecar; nothing else is left."""
    from test_trainer22_hostile import _md5s
    from trainer.drive import DriveFolder

    spec = "drive:Models/a23g/logs"
    run, there, logs = _bad_here_another_on_drive(tiny_config, tmp_path, spec, None)
    start = _choose(logs, "auto", run, drive=DriveFolder(spec, str(logs)))
    assert (start.path, start.where) == (str(logs / "epoch_002.pt"), f"{spec}/epoch_002.pt")
    assert _md5s(logs) == _md5s(there)
    assert sorted(os.listdir(logs)) == ["epoch_001.json", "epoch_001.pt", "epoch_002.json",
                                        "epoch_002.pt"]


# ------------------------------------------- DDP: two machines, rank 0 falls back (gloo, CPU)

LOGS = "Models/run/logs"          # (test_attack_ddp19's)

def _vet_w(state, path):
    """The vet of test_attack_ddp19's minimal checkpoints: NaN in ``w`` is no state to train on."""
    import torch

    from trainer.errors import UnusableCheckpointError

    if not bool(torch.isfinite(state["model"]["w"]).all()):
        raise UnusableCheckpointError(f"cannot resume from {path}: NaN", path,
                                      "its model weights hold NaN")


def _fallback_machine(rank: int, port: int, env: dict, root: str) -> None:
    """One "machine" (its own out_dir), one rank each; rank 0 chooses from Drive with the vet.
    Machine 1 holds its own epoch_004.pt (the bad state) and an epoch_003.pt of other bytes."""
    import datetime
    import types

    import torch
    import torch.distributed as dist

    os.environ.update(env)
    torch.set_num_threads(1)
    from test_attack_ddp19 import _sidecar, _state
    from trainer import distributed, resume
    from trainer.checkpoint import load_checkpoint
    from trainer.drive import DriveFolder

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2, timeout=datetime.timedelta(seconds=40))
    info = distributed.DistInfo(rank=rank, world_size=2, local_rank=0)
    out_dir = os.path.join(root, f"machine{rank}", "logs")
    os.makedirs(out_dir, exist_ok=True)
    if rank == 1:
        for name, data, epoch in (("epoch_004.pt", _bad_state(), 4),
                                  ("epoch_003.pt", _state(3, 9), 3)):
            with open(os.path.join(out_dir, name), "wb") as fh:
                fh.write(data)
            with open(os.path.join(out_dir, name[:-3] + ".json"), "wb") as fh:
                fh.write(_sidecar(data, epoch))
    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=out_dir))
    drive = DriveFolder(f"drive:{LOGS}", out_dir) if rank == 0 else None
    result: dict = {}
    try:
        start = resume.choose(cfg, "auto", info, drive, vet=_vet_w if rank == 0 else None)
        result["w"] = float(load_checkpoint(start.path)["model"]["w"][0])
        result["where"] = start.where
        resume.loaded(start, info)
    except Exception as exc:   # noqa: BLE001 (recorded for the test)
        result["error"] = f"{type(exc).__name__}: {exc}"
    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()
    result["left"] = sorted(os.listdir(out_dir))
    with open(os.path.join(root, f"result{rank}.json"), "w") as fh:
        json.dump(result, fh)


def _bad_state() -> bytes:
    from test_attack_ddp19 import _state

    return _state(4, float("nan"))    # (its marker fills the weights: NaN)


@pytest.mark.slow
@pytest.mark.skipif(not ALL, reason="a guard that held (two processes, 5 s): with "
                                    "DRIVESTAGE_TEST_SWEEP=all (CI's time is near its budget)")
def test_ddp_ranks_go_on_from_the_state_rank0_fell_back_to(emulator, drive_env, local_state,
                                                          tmp_path):
    """Drive: epoch_004.pt (NaN), epoch_003.pt (good). Rank 0 (an empty run folder) passes
    over epoch_004.pt and fetches epoch_003.pt; machine 1 holds the bad epoch_004.pt itself
    and an epoch_003.pt of other bytes. Only rank 0 vets and decides: both ranks load rank
    0's epoch_003 bytes; machine 1's files are kept, its hidden copy removed. Holds; a
    guard."""
    import torch.multiprocessing as mp

    from test_attack_ddp19 import _free_port, _sidecar, _state

    good = _state(3, 3)
    emulator.add_file(f"{LOGS}/epoch_003.pt", good)
    emulator.add_file(f"{LOGS}/epoch_003.json", _sidecar(good, 3))
    emulator.add_file(f"{LOGS}/epoch_004.pt", _bad_state())
    emulator.add_file(f"{LOGS}/epoch_004.json", _sidecar(_bad_state(), 4))
    env = {k: os.environ[k] for k in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN",
                                      "DRIVESTAGE_STATE_DIR", "DRIVESTAGE_RETRY_BASE",
                                      "DRIVESTAGE_RETRY_CAP")}
    env.update(OMP_NUM_THREADS="1")
    mp.set_forkserver_preload(["torch", "trainer.resume", "trainer.drive"])
    mp.start_processes(_fallback_machine, args=(_free_port(), env, str(tmp_path)), nprocs=2,
                       join=True, start_method="forkserver")
    r0, r1 = (json.loads((tmp_path / f"result{r}.json").read_text()) for r in (0, 1))
    assert r0.get("where") == f"drive:{LOGS}/epoch_003.pt", r0
    assert r0["w"] == r1["w"] == 3.0, (r0, r1)
    assert r0["left"] == ["epoch_003.json", "epoch_003.pt"], r0
    assert r1["left"] == ["epoch_003.json", "epoch_003.pt", "epoch_004.json",
                          "epoch_004.pt"], r1


def test_a_refusal_of_the_resume_checks_says_how_to_list_and_get_an_earlier_one(
        tiny_config, tmp_path):
    """The refusal of one bad state (and every resume check's) ended "--resume PATH (trainer
    status and drivestage ls list them)": trainer status shows one checkpoint, the run's
    newest on Drive (here the bad one), and --resume takes no drive: path. It now names what
    lists them and that one on Drive is pulled first."""
    from trainer.errors import CheckpointError

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0, _nan_model)
    with pytest.raises(CheckpointError) as refused:
        _choose(logs, "auto", run)
    text = str(refused.value)
    assert "trainer status" not in text, text
    assert text.endswith("; resume an earlier checkpoint of the run with --resume PATH (ls "
                         "train.out_dir lists this machine's; drivestage ls <drive.logs> lists "
                         "Drive's, and drivestage pull <one> ./weights fetches it: --resume "
                         "takes no drive: path), or start a new run in a new train.out_dir"), text
