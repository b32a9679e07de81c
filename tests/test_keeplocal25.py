"""keeplocal25: ``train.keep_local`` keeps only the newest N ``epoch_NNN.pt`` in the run folder.

Before, every epoch file stayed in ``train.out_dir`` (``drive.keep_last`` prunes Drive only):
a 300-epoch run at 416 px (about 70 MB a file) filled a Colab disk, and the room check
(trainer24) refused it up front. Each rule is asserted on the exact set of files left:
the newest N stay, and older ones go only once settled with Drive (verified there by md5);
``last.pt``, ``best.pt``, autosaves and ``*.bad-<time>`` files are neither counted nor
touched; the checkpoint ``--resume auto`` takes is never deleted; a kill at any point of a
deletion leaves a folder the resume reads right; rank 0 alone deletes.

Real checkpoints of a real (small) model written by the trainer's own save and writer; the
real PyDrive2 stack against the emulator; no training."""
from __future__ import annotations

import logging
import os
import re

import pytest

from test_trainer22_hostile import _config, _small_run
from test_trainer23_fallback import _warnings
from trainer import distributed

SPEC = "drive:Models/kl25/logs"
BAD = ("epoch_001.pt.bad-20261201-000000", "epoch_001.json.bad-20261201-000000")


def _files(folder) -> set[str]:
    return set(os.listdir(folder))


def _epochs(*numbers: int) -> set[str]:
    return {f"epoch_{e:03d}.{x}" for e in numbers for x in ("pt", "json")}


def _saver(tiny_config, logs, keep: int, drive=None, info=None):
    """A small run, and a save policy with ``train.keep_local`` ``keep`` writing through a
    writer of its own (mirrored to ``drive``, a DriveFolder, when given)."""
    from trainer.saving import Checkpointer
    from trainer.writer import BackgroundWriter

    run = _small_run(tiny_config, logs)
    run.cfg = _config(tiny_config, logs, **{"train.keep_local": keep})
    writer = BackgroundWriter(str(logs), drive)
    saver = Checkpointer(run.cfg, info or run.info, writer, run.stop)
    return run, writer, saver


def _save_epochs(run, saver, *epochs: int) -> None:
    from trainer.state import Position

    for e in epochs:
        saver.on_fit_epoch_end(run, Position(e, 2 * e, 0), {})


# ------------------------------------------------------------------------------- the decision

def test_the_plan_keeps_the_newest_and_what_it_must():
    """Pure: the newest ``keep`` up to the epoch reached stay, and so do those protected, those
    not settled and those numbered above it (a run sent back left them); 0 deletes nothing."""
    from trainer.local_retention import plan

    found = {f"epoch_{e:03d}.pt": e for e in (2, 4, 6, 8, 10, 12)}
    assert plan(found, 2, upto=12) == ["epoch_002.pt", "epoch_004.pt", "epoch_006.pt",
                                       "epoch_008.pt"]
    assert plan(found, 2, upto=8) == ["epoch_002.pt", "epoch_004.pt"]
    assert plan(found, 2, upto=12, protect={"epoch_004.pt"},
                settled=lambda n: n != "epoch_006.pt") == ["epoch_002.pt", "epoch_008.pt"]
    assert plan(found, 0, upto=12) == [] and plan(found, 6, upto=12) == []


def test_the_config_key_is_checked():
    from trainer.config import Config, validate
    from trainer.errors import ConfigError

    cfg = Config()
    assert cfg.train.keep_local == 0            # the default deletes nothing, as before
    cfg.train.keep_local = -1
    with pytest.raises(ConfigError, match=r"train.keep_local must be >= 0 \(0 = keep every "
                                          r"epoch file\), got -1"):
        validate(cfg)


# ------------------------------------------------------------------------------ without Drive

def test_without_drive_the_newest_epoch_files_stay_and_nothing_else_is_touched(
        tiny_config, tmp_path):
    """keep_local 2, epochs 1-4 saved (last.pt and epoch_NNN.pt each): epoch_003 and
    epoch_004 stay with their sidecars; best.pt, a file passed over (``.bad-``) and a folder
    named like an epoch file are neither counted nor touched; keep_local 0 keeps every one."""
    logs = tmp_path / "logs"
    run, writer, saver = _saver(tiny_config, logs, 2)
    for name in BAD + ("best.pt", "best.json"):
        (logs / name).write_bytes(b"theirs")
    (logs / "epoch_000.pt").mkdir()              # a folder of that name: not the run's
    _save_epochs(run, saver, 1, 2, 3, 4)
    writer.close()
    assert _files(logs) == {"last.pt", "last.json", "best.pt", "best.json", *BAD,
                            "epoch_000.pt", *_epochs(3, 4)}
    assert all((logs / n).read_bytes() == b"theirs" for n in BAD + ("best.pt", "best.json"))

    every = tmp_path / "every"
    run, writer, saver = _saver(tiny_config, every, 0)
    _save_epochs(run, saver, 1, 2, 3)
    writer.close()
    assert _files(every) == {"last.pt", "last.json", *_epochs(1, 2, 3)}


def test_the_checkpoint_resume_auto_goes_on_from_is_never_deleted(tmp_path):
    """The run was sent back to epoch 2 on purpose (its sidecar saved last: epochs 3 and 4
    are left behind), so ``--resume auto`` goes on from epoch_002.pt: with keep_local 1 it
    stays beside the newest, the others go."""
    from _checkpoints import save
    from trainer import checkpoint as ckpt
    from trainer.local_retention import LocalRetention

    logs = str(tmp_path / "logs")
    for e, saved in ((1, 1000.0), (2, 5000.0), (3, 3000.0), (4, 4000.0)):
        save(logs, f"epoch_{e:03d}", e, saved, saved=saved)
    assert ckpt.newest(ckpt.list_checkpoints(logs), any_run=True).described.name == "epoch_002.pt"
    from _checkpoints import RUN

    assert LocalRetention(logs, 1).apply(upto=4, run=RUN) == ["epoch_001.pt", "epoch_003.pt"]
    assert _files(logs) == _epochs(2, 4)


# -------------------------------------------------------------------------------- with Drive

def test_with_drive_an_epoch_file_goes_only_once_verified_there(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """Every upload arrives damaged (Drive's md5 is not the file's): nothing is verified, and
    nothing is deleted although keep_local is 1. The next run's push verifies them: then the
    older ones go (this run's own and those of the run before), the newest stays."""
    from trainer.drive import DriveFolder

    logs = tmp_path / "logs"
    emulator.faults.corrupt_upload(times=10_000)
    run, writer, saver = _saver(tiny_config, logs, 1, DriveFolder(SPEC, str(logs)))
    _save_epochs(run, saver, 1, 2)
    writer.close()
    assert writer.last_error is not None
    assert _files(logs) >= _epochs(1, 2)

    emulator.faults.clear()
    run, writer, saver = _saver(tiny_config, logs, 1, DriveFolder(SPEC, str(logs)))
    _save_epochs(run, saver, 3)
    writer.close()
    assert writer.last_error is None
    assert {n for n in _files(logs) if n.startswith("epoch_")} == _epochs(3)
    on_drive = {f["title"] for f in emulator.files() if not f["labels"]["trashed"]}
    assert on_drive >= _epochs(1, 2, 3)


def test_older_files_already_verified_on_drive_are_found_by_one_listing(
        emulator, drive_env, local_state, tmp_path):
    """Epoch files of an earlier process, already on Drive (the push finds them unchanged and
    says nothing of them): a listing of drive.logs tells they are verified there, once per
    process; a file whose bytes here are not Drive's stays."""
    from _checkpoints import RUN, save
    from trainer.drive import DriveFolder
    from trainer.local_retention import LocalRetention

    logs = str(tmp_path / "logs")
    for e in (1, 2, 3, 4):
        save(logs, f"epoch_{e:03d}", e, 1000.0 * e)
    drive = DriveFolder(SPEC, logs)
    drive.push()
    save(logs, "epoch_002", 2, 2500.0)           # other bytes here since
    keep = LocalRetention(logs, 1, drive)
    assert keep.apply(upto=4, run=RUN) == ["epoch_001.pt", "epoch_003.pt"]
    assert _files(logs) == _epochs(2, 4)
    emulator.clear_requests()
    assert keep.apply(upto=4, run=RUN) == []     # (epoch_002's bytes are still not Drive's)
    assert not emulator.requests                 # listed once: no second listing


# ------------------------------------------------------------------------- a kill, and DDP

class _Killed(BaseException):
    pass


@pytest.mark.parametrize("calls", [1, 2, 3])
def test_a_kill_at_any_point_of_a_deletion_leaves_the_run_resumable(
        tiny_config, tmp_path, monkeypatch, caplog, calls):
    """The process dies after the first, second or third file-system call of a deletion of
    epoch_001.pt: ``--resume auto`` goes on from epoch_002.pt without a warning, nothing is
    described anew, and the next pass leaves exactly the files it would have."""
    from test_trainer24_resume import _choose
    from trainer import checkpoint as ckpt
    from trainer.local_retention import LocalRetention, remove

    logs = tmp_path / "logs"
    run, writer, saver = _saver(tiny_config, logs, 0)
    _save_epochs(run, saver, 1, 2)
    writer.close()
    done = [0]

    def dying(real):
        def call(*args, **kwargs):
            if done[0] == calls:
                raise _Killed()
            done[0] += 1
            return real(*args, **kwargs)
        return call

    with monkeypatch.context() as m:
        m.setattr(os, "replace", dying(os.replace))
        m.setattr(os, "unlink", dying(os.unlink))
        try:
            remove(str(logs), "epoch_001.pt")
        except _Killed:
            pass
    left = {n for n in _files(logs) if n.endswith(".tmp")}
    assert len(left) == (calls < 3), left
    with caplog.at_level(logging.WARNING):
        assert ckpt.describe_killed_saves(str(logs)) == []
        assert _choose(logs, run).path == str(logs / "epoch_002.pt")
    assert not _warnings(caplog)
    for name in left:                 # what the next atomic write removes once we are gone
        from drivestage import temps

        assert temps.parse(name) == (temps.namespace_tag(), os.getpid())
        os.unlink(logs / name)
    LocalRetention(str(logs), 1).apply(upto=2, run=run.state.run)
    assert _files(logs) == {"last.pt", "last.json", *_epochs(2)}


def test_only_rank_0_deletes(tiny_config, tmp_path):
    """A save policy on rank 1 handed a writer (the engine gives it none) sets no local
    retention: its writer's saves delete nothing. Rank 0's do."""
    from trainer.saving import snapshot
    from trainer.state import Position
    from trainer.writer import SaveJob

    for rank, left in ((1, (1, 2, 3)), (0, (3,))):
        logs = tmp_path / f"rank{rank}"
        run, writer, saver = _saver(tiny_config, logs, 1,
                                    info=distributed.DistInfo(rank=rank, world_size=2))
        for e in (1, 2, 3):
            writer.submit(SaveJob(snapshot(run), [f"epoch_{e:03d}.pt"], Position(e, 2 * e, 0)))
        writer.close()
        assert {n for n in _files(logs) if n.startswith("epoch_")} == _epochs(*left), rank


# ------------------------------------------------------------------------------ room, status

def test_the_room_check_counts_only_the_epoch_files_the_run_keeps(tmp_path):
    """10 epochs, save_period 2 (5 epoch files), keep_local 2: at most 3 at once (the newest
    two and the one just written, before the older goes): last.pt, 3 epoch files, best.pt and
    a temporary file beside last.pt. The refusal says so."""
    from test_trainer24_room import MiB, _cfg
    from trainer import room

    cfg = _cfg(tmp_path, keep_local=2)
    size = 100 * MiB
    need = 6 * size
    assert room.shortage(cfg, 0, size, free_bytes=lambda p: need) is None
    why = room.shortage(cfg, 0, size, free_bytes=lambda p: need - 1)
    assert why is not None and (
        "by epoch 10 the run adds 5 more of that size (epoch_002.pt to epoch_010.pt: 5 files, "
        "train.save_period 2, 3 of them at once: train.keep_local 2 deletes the older ones; "
        "best.pt; a temporary file beside a file a save replaces), 600.0 MiB") in why, why
    assert why.endswith("or raise train.save_period or lower train.keep_local")
    # Two there already (a resume): only the one written before the older goes is new room.
    for name in ("last.pt", "epoch_002.pt", "epoch_004.pt"):
        (tmp_path / "logs" / name).write_bytes(b"x")
    assert room.shortage(cfg, 4, size, free_bytes=lambda p: 3 * size) is None
    assert room.shortage(cfg, 4, size, free_bytes=lambda p: 3 * size - 1) is not None


def test_without_keep_local_the_refusal_names_it(tmp_path):
    from test_trainer24_room import MiB, _cfg
    from trainer import room

    why = room.shortage(_cfg(tmp_path), 0, 100 * MiB, free_bytes=lambda p: 1)
    assert why is not None and why.endswith(
        "or raise train.save_period, or set train.keep_local (the newest epoch files kept "
        "here)"), why


def test_status_says_how_many_epoch_files_are_kept_here(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """The run folder holds 4 epoch files, keep_local 2 (2 not yet verified on Drive): status
    says so in one line after Drive's; the JSON lists them."""
    import json

    from _checkpoints import save
    from click.testing import CliRunner
    from trainer.cli import cli
    from trainer.drive import DriveFolder

    logs = tmp_path / "logs"
    for e in (1, 2, 3, 4):
        save(str(logs), f"epoch_{e:03d}", e, 1000.0 * e)
    DriveFolder(SPEC, str(logs)).push()
    cfg = tiny_config(**{"drive.logs": SPEC, "train.out_dir": str(logs), "train.keep_local": 2})
    res = CliRunner().invoke(cli, ["status", "-c", cfg])
    assert res.exit_code == 0, res.output
    # (These checkpoints are no state for the config's network: --resume auto's refusal
    # stays the last line, after the run folder's: lefts52.)
    lines = res.stdout.splitlines()
    assert lines[-2] == (
        f"{logs}: 4 epoch files on this machine (epoch_001.pt to epoch_004.pt); "
        f"train.keep_local 2: 2 of them go once verified on Drive")
    assert lines[-1].startswith("--resume auto refuses: "), lines
    data = json.loads(CliRunner().invoke(cli, ["status", "-c", cfg, "--json"]).stdout)
    assert data["local_epoch_files"] == [f"epoch_{e:03d}.pt" for e in (1, 2, 3, 4)]
    assert data["keep_local"] == 2
    every = tiny_config(**{"drive.logs": SPEC, "train.out_dir": str(logs)})
    line = CliRunner().invoke(cli, ["status", "-c", every]).stdout.splitlines()[-2]
    assert re.fullmatch(rf"{re.escape(str(logs))}: 4 epoch files on this machine \(epoch_001"
                        rf"\.pt to epoch_004\.pt\); train\.keep_local 0: every one is kept",
                        line), line


# ----------------------------------------------------- status and a layout of another network

def fitted(change=None):
    """A change for ``test_trainer23_fallback._save``: the small run's model and EMA weights
    replaced by the layout of the tiny config's network (YOLOv4-tiny, 3 classes) in a few
    bytes (each tensor a stride-0 view of one bool, which torch.save writes once: the layout
    is in the shapes alone; the first floating one whole, a NaN can be written into it),
    then ``change``. ``trainer status``
    compares the layout with the config's network, as ``--resume auto`` does."""
    import torch

    from trainer.config import DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK
    from trainer.model import YoloV4Tiny

    with torch.device("meta"):
        own = YoloV4Tiny(3, DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, input_size=64,
                         width=0.25).state_dict()   # (tests/conftest.py's tiny_config)

    def weights() -> dict:
        out, whole = {}, True
        for key, t in own.items():
            if whole and t.is_floating_point():
                out[key], whole = torch.zeros(t.shape, dtype=t.dtype), False
            else:
                # (bool: the NaN checks skip it; torch.isfinite over 6M stride-0 floats per
                # model cost each status call a second)
                out[key] = torch.zeros((), dtype=torch.bool).expand(t.shape)
        return out

    def apply(state) -> None:
        state["model"] = weights()
        if state.get("ema"):
            state["ema"]["model"] = weights()
        if change is not None:
            change(state)
    return apply


#: The first floating tensor of that network (what a NaN change hits).
FIRST = "backbone.conv1.conv.weight"


def _misfit(state) -> None:
    """One tensor of the network of another shape, under the run's signature (a damaged or
    foreign file)."""
    import torch

    state["model"]["yolo_headP4.1.weight"] = torch.zeros(1).expand(5, 256, 1, 1)


def test_status_names_a_checkpoint_of_another_layout_as_passed_over_in_resume_autos_words(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """Drive: epoch_001.pt fits the config's network, epoch_002.pt (newest) has one tensor of
    another shape under the run's own signature. Status builds no model (the network on the
    meta device), names epoch_002.pt as passed over with the reason --resume auto's vetter
    gives, and epoch_001.pt as where --resume auto goes on."""
    import torch
    from click.testing import CliRunner

    from test_trainer22_hostile import _small_run
    from test_trainer23_fallback import _save
    from trainer.cli import cli
    from trainer.drive import DriveFolder
    from trainer.errors import UnusableCheckpointError
    from trainer.model import YoloV4Tiny
    from trainer.resume_checks import vetter

    there = tmp_path / "elsewhere"
    run = _small_run(tiny_config, there)
    _save(run, there, "epoch_001.pt", 1, 1000.0, fitted())
    bad = _save(run, there, "epoch_002.pt", 2, 2000.0, fitted(_misfit))
    DriveFolder(SPEC, str(there)).push()
    cfg = tiny_config(**{"drive.logs": SPEC, "train.out_dir": str(tmp_path / "fresh")})
    res = CliRunner().invoke(cli, ["status", "-c", cfg])
    assert res.exit_code == 0, res.output
    # --resume auto's words for it: the vetter of the real network, on this state.
    from trainer.config import DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, load_config

    net = YoloV4Tiny(3, DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, input_size=64,
                     width=load_config(cfg).model.width)
    with pytest.raises(UnusableCheckpointError) as auto:
        vetter(net, None, torch.optim.SGD(net.parameters(), lr=0.1),
               run.signature)(torch.load(bad, weights_only=True), f"{SPEC}/epoch_002.pt")
    lines = res.stdout.splitlines()
    assert lines[1] == (f"{SPEC}/epoch_002.pt is no state to train on ({auto.value.why}): "
                        f"--resume auto passes over it")
    assert auto.value.why == (
        "its model weights do not fit the network of this config (1 tensors of another shape, "
        "e.g. yolo_headP4.1.weight): a damaged file, or another trainer's")
    assert lines[2].startswith(f"--resume auto goes on from {SPEC}/epoch_001.pt: epoch 1, ")
    assert len(lines) == 3 and not res.stderr


def test_a_sidecar_left_by_a_killed_deletion_is_removed_before_the_next_push(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    """Killed after epoch_001.pt left its name (its sidecar still there): the next run's
    writer removes the lone sidecar before it pushes, so Drive never gets a sidecar without
    its checkpoint; the temporary file is never mirrored."""
    from _checkpoints import save
    from trainer.drive import DriveFolder
    from trainer.local_retention import remove
    from trainer.writer import BackgroundWriter

    logs = str(tmp_path / "logs")
    for e in (1, 2):
        save(logs, f"epoch_{e:03d}", e, 1000.0 * e)
    real = os.replace

    def killed(*args, **kwargs):
        real(*args, **kwargs)
        raise _Killed()

    with monkeypatch.context() as m:
        m.setattr(os, "replace", killed)
        with pytest.raises(_Killed):
            remove(logs, "epoch_001.pt")
    assert "epoch_001.json" in _files(logs) and "epoch_001.pt" not in _files(logs)
    writer = BackgroundWriter(logs, DriveFolder(SPEC, logs))
    writer.keep_local(1)
    writer.close()
    assert writer.last_error is None
    on_drive = {f["title"] for f in emulator.files() if not f["labels"]["trashed"]}
    assert on_drive - {"Models", "kl25", "logs"} == _epochs(2), on_drive
    assert {n for n in _files(logs) if not n.endswith(".tmp")} == _epochs(2)


def test_a_file_drives_policy_leaves_out_is_settled_and_a_listing_failure_is_not(
        emulator, drive_env, local_state, fast_retries, tmp_path):
    """drive.keep_last 1: the push leaves epoch_001 and epoch_002 out (Drive's policy would
    delete them at once): with keep_local 1 they go here too, as the user asked of both
    places. Drive unreachable for the listing of older files: nothing goes, no error."""
    from _checkpoints import RUN, save
    from trainer.drive import DriveFolder, retention_policy
    from trainer.local_retention import LocalRetention

    logs = str(tmp_path / "logs")
    for e in (1, 2, 3):
        save(logs, f"epoch_{e:03d}", e, 1000.0 * e)
    drive = DriveFolder(SPEC, logs, retention_policy(1, 0, None))
    result = drive.push()
    assert set(result.skipped_by_policy) == _epochs(1, 2)

    down = LocalRetention(logs, 1, drive)
    emulator.faults.inject("GET", r"/files", status=500, times=None)
    assert down.apply(upto=3, run=RUN) == []
    emulator.faults.clear()
    assert _files(logs) == _epochs(1, 2, 3)

    keep = LocalRetention(logs, 1, drive)
    keep.pushed({}, result.uploaded, result.skipped_by_policy)
    assert keep.apply(upto=3, run=RUN) == ["epoch_001.pt", "epoch_002.pt"]
    assert _files(logs) == _epochs(3)
