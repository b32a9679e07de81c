"""trainer23: ``--resume auto`` falls back past a newest checkpoint that fails the resume
checks (NaN weights, an EMA or optimizer state of another model: trainer.resume_checks).

Before, the run refused to start: a user on a machine that vanishes (Colab, a spot VM) ran the
same command again and again and got the same refusal, although an older checkpoint of the
run was a good state to go on from. Now ``--resume auto`` warns once, naming the checkpoint
skipped and why, keeps it (here and on Drive), and goes on from the newest one that passes;
it looks at :data:`trainer.resume_fallback.MAX_TRIED` states at most, then refuses in one line
naming what it tried. ``--resume PATH`` to a bad file still refuses.

Real checkpoint files of a real (small) model, written by the trainer's own save."""
from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import pytest

from test_trainer22_hostile import _md5s, _nan_model, _optimizer_of_another_model, _small_run
from trainer import checkpoint as ckpt
from trainer import distributed

RUN = "20261204-120000-ab12"


def _save(run, logs, name: str, epoch: int, saved: float, change=None, copies=()) -> str:
    """The trainer's save of ``run``'s state as epoch ``epoch`` of :data:`RUN`, changed by
    ``change(state)`` (a hostile one), saved at ``saved``; ``copies`` made as a save makes
    them (``last.pt`` beside ``epoch_NNN.pt``)."""
    from trainer.saving import snapshot

    state = snapshot(run)
    state.update(epoch=epoch, iteration=2 * epoch, epoch_iteration=0, run=RUN)
    if change is not None:
        change(state)
    path = ckpt.save_checkpoint(state, str(logs / name), saved=saved)
    for copy in copies:
        ckpt.copy_checkpoint(path, str(logs / copy))
    return path


def _vet(run):
    from trainer import resume_checks as checks

    return checks.vetter(run.bare_model, run.ema, run.optimizer)


def _choose(logs, resume: str, run, drive=None):
    from trainer.resume import choose

    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    return choose(cfg, resume, distributed.env_info(), drive, vet=_vet(run))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _drive_listing(emulator) -> list[tuple[str, str]]:
    """Drive's live files: (title, md5), for a before/after comparison."""
    return sorted((f["title"], f.get("md5Checksum")) for f in emulator.files()
                  if not f["labels"]["trashed"])


def _bad_newest_on_drive(tiny_config, tmp_path, spec: str):
    """A run whose epoch_001.pt (good) and epoch_002.pt (NaN weights) are on Drive at
    ``spec``, pushed from ``tmp_path/elsewhere``: (the run, that folder)."""
    from trainer.drive import DriveFolder

    there = tmp_path / "elsewhere"
    run = _small_run(tiny_config, there)
    _save(run, there, "epoch_001.pt", 1, 1000.0)
    _save(run, there, "epoch_002.pt", 2, 2000.0, _nan_model)
    DriveFolder(spec, str(there)).push()
    return run, there


def test_auto_goes_on_from_the_newest_checkpoint_that_passes_and_keeps_the_bad_one(
        tiny_config, tmp_path, caplog):
    """epoch_002.pt (and last.pt, the same bytes) hold NaN weights; epoch_001.pt is good.
    One warning names epoch_002.pt and why; the start is epoch_001.pt, which restores; no
    file is deleted or changed."""
    from trainer.resume import restore

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    _save(run, logs, "epoch_002.pt", 2, 2000.0, _nan_model, copies=["last.pt"])
    before = _md5s(logs)
    with caplog.at_level(logging.WARNING):
        start = _choose(logs, "auto", run)
    assert start.path == str(logs / "epoch_001.pt")
    said = _warnings(caplog)
    assert said == [f"{logs / 'epoch_002.pt'} is no state to train on (its model weights hold "
                    f"NaN or infinite values (1 tensor, e.g. 0.weight): the run had diverged "
                    f"when it was saved); it is kept as it is, and --resume auto tries the next "
                    f"older checkpoint"], said
    assert _md5s(logs) == before
    fresh = _small_run(tiny_config, tmp_path / "fresh")
    restore(fresh, start)
    assert fresh.state.pos.epoch == 1 and fresh.state.run == RUN


def test_auto_looks_at_three_states_at_most_then_refuses_naming_them(tiny_config, tmp_path):
    """Epochs 2 to 5 are bad (epoch 1 is good, but older than the bound): refused in one line
    naming the three newest, each with why; epoch_002.pt was not looked at; nothing
    deleted."""
    from trainer.errors import CheckpointError

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    for epoch in (2, 3, 4):
        _save(run, logs, f"epoch_{epoch:03d}.pt", epoch, 1000.0 + epoch, _nan_model)
    _save(run, logs, "epoch_005.pt", 5, 1005.0, _optimizer_of_another_model, copies=["last.pt"])
    before = _md5s(logs)
    with pytest.raises(CheckpointError) as refused:
        _choose(logs, "auto", run)
    text = str(refused.value)
    assert "\n" not in text and refused.value.exit_code == 1
    assert text.startswith(f"--resume auto found no state to train on in the 3 newest "
                           f"checkpoints of run {RUN} in {logs} (older ones were not tried): "
                           f"epoch_005.pt (the optimizer state does not match the model ("), text
    assert "; epoch_004.pt (its model weights hold NaN or infinite values (1 tensor, " in text
    assert "; epoch_003.pt (its model weights hold NaN" in text
    assert "; epoch_002.pt (" not in text and "last.pt" not in text   # (named as the next)
    assert text.endswith(f"; the next older one, {logs / 'epoch_002.pt'}, was not looked at: "
                         f"to go on from it, run the same command with --resume "
                         f"{logs / 'epoch_002.pt'} (it is checked then), or start a new run in "
                         f"a new train.out_dir")
    assert _md5s(logs) == before


def test_auto_with_only_bad_checkpoints_refuses_as_before(tiny_config, tmp_path):
    """One state, bad (two names, the same bytes): the refusal restore gave before, naming it."""
    from trainer.errors import CheckpointError

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0, _nan_model, copies=["last.pt"])
    with pytest.raises(CheckpointError) as refused:
        _choose(logs, "auto", run)
    assert str(refused.value).startswith(f"cannot resume from {logs / 'epoch_001.pt'}: its "
                                         f"model weights hold NaN or infinite values")


def test_an_explicit_path_to_a_bad_checkpoint_is_still_refused(tiny_config, tmp_path):
    """--resume PATH is what the user asked for: no fallback, restore refuses it."""
    from trainer.errors import CheckpointError
    from trainer.resume import restore

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    bad = _save(run, logs, "epoch_002.pt", 2, 2000.0, _nan_model)
    start = _choose(logs, bad, run)
    assert start.path == bad
    with pytest.raises(CheckpointError) as refused:
        restore(_small_run(tiny_config, tmp_path / "fresh"), start)
    assert str(refused.value).startswith(f"cannot resume from {bad}: its model weights hold NaN")


def test_a_fresh_machine_falls_back_past_a_bad_newest_on_drive_and_drive_keeps_it(
        emulator, drive_env, local_state, tiny_config, tmp_path, caplog):
    """Drive holds epoch_001.pt (good) and epoch_002.pt (NaN); this machine's run folder is
    empty. The start is epoch_001.pt fetched from Drive; Drive keeps every file as it was;
    the bad one is not left in the run folder either (Drive holds it)."""
    from trainer.drive import DriveFolder

    spec = "drive:Models/t23/logs"
    run, there = _bad_newest_on_drive(tiny_config, tmp_path, spec)
    before = _drive_listing(emulator)
    logs = tmp_path / "logs"
    logs.mkdir()
    with caplog.at_level(logging.WARNING):
        start = _choose(logs, "auto", run, drive=DriveFolder(spec, str(logs)))
    assert start.path == str(logs / "epoch_001.pt")
    assert start.where == f"{spec}/epoch_001.pt"
    said = _warnings(caplog)
    assert len(said) == 1 and said[0].startswith(f"{spec}/epoch_002.pt is no state to train on "
                                                 f"(its model weights hold NaN"), said
    assert _drive_listing(emulator) == before
    assert not os.path.exists(logs / "epoch_002.pt")


def test_a_checkpoint_of_another_network_is_not_passed_over(tiny_config, tmp_path):
    """The config changed the model (another class count): every checkpoint of the run is of
    another network, which is no fault of the file. --resume auto chooses the newest as before
    and restore refuses it naming the change; nothing is skipped with a warning."""
    import torch

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    path = _save(run, logs, "epoch_002.pt", 2, 2000.0)
    other = _small_run(tiny_config, tmp_path / "other")
    other.model[0] = torch.nn.Conv2d(3, 5, 3)      # another shape than the checkpoints'
    assert _choose(logs, "auto", other).path == path
