"""attacktrain42: a machine that vanished between a save's two uploads to Drive (the checkpoint
reached Drive, its sidecar did not: every checkpoint of a push goes before the sidecars), its
disk gone with it. The fresh machine's ``--resume auto`` counted only checkpoints a sidecar
vouches for: it said "no checkpoint in … nor on drive:…: starting fresh", trained the run again
from its first iteration, and replaced ``epoch_001.pt`` on Drive at its first save. Now the
newest such file is fetched, described from its contents and resumed from, with one warning
naming it; the resumed run's push gives it its sidecar on Drive (:mod:`trainer.drive_lone`).

Found by a real SIGKILL (an audit hook on the sidecar's upload in a training child); here the
state it leaves is made directly: the first epoch's sidecars deleted on Drive."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil

import pytest

from _tiny_run import tiny_run_config, warnings_said
from trainer import checkpoint as ckpt
from trainer.config import load_config
from trainer.engine import fit


def _files(emulator, folder: str = "runs/a") -> dict:
    """{title: File resource} of the live files directly in ``folder``."""
    parent = emulator.find(folder)
    return {f["title"]: f for f in emulator.files() if not f["labels"]["trashed"]
            and any(p["id"] == parent["id"] for p in f.get("parents", []))}


@pytest.mark.slow
def test_a_checkpoint_alone_on_drive_is_resumed_from_and_gets_its_sidecar(
        emulator, drive_env, local_state, tmp_path, one_torch_thread, caplog):
    first = fit(load_config(tiny_run_config(tmp_path, 1)), resume="none")
    run = ckpt.read_sidecar(str(tmp_path / "logs" / "epoch_001.pt")).run
    for name in ("epoch_001.json", "best.json"):     # the uploads the kill cut off
        emulator.store.delete(_files(emulator)[name]["id"])
    before = _files(emulator)["epoch_001.pt"]
    shutil.rmtree(first.out_dir)                       # a fresh machine: only Drive has it
    with caplog.at_level(logging.INFO, logger="trainer"):
        result = fit(load_config(tiny_run_config(tmp_path, 2)), resume="auto")
    logs = tmp_path / "logs"
    assert result.resumed_from == str(logs / "epoch_001.pt")
    assert [r.getMessage() for r in warnings_said(caplog)] == [   # one line (lefts43)
        "drive:runs/a/epoch_001.pt has no sidecar on Drive (a save was killed between its two "
        "uploads) and nothing else there is a checkpoint: going on from it (epoch 1, "
        "iteration 2, described from its contents)"]
    assert "starting fresh" not in caplog.text
    assert ckpt.load_checkpoint(str(logs / "last.pt"))["run"] == run   # the same run, on
    there = _files(emulator)
    assert there["epoch_001.pt"]["id"] == before["id"]                  # never replaced
    assert there["epoch_001.pt"]["md5Checksum"] == before["md5Checksum"]
    side = json.loads(emulator.read_bytes(there["epoch_001.json"]["id"]))
    assert (side["md5"], side["epoch"], side["run"]) == (before["md5Checksum"], 1, run)
    assert {"epoch_002.pt", "epoch_002.json"} <= set(there)


def test_a_file_alone_on_drive_that_is_no_checkpoint_is_left_there(
        emulator, drive_env, local_state, tmp_path, caplog):
    """An ``epoch_001.pt`` of other bytes (not a torch file) with no sidecar: said, Drive
    keeps it, nothing is left in the run folder, and the run starts afresh (no step taken
    here: only the decision)."""
    from trainer.drive import DriveFolder
    from trainer.resume import _decide
    from types import SimpleNamespace

    blob = b"not a checkpoint" * 10
    emulator.add_file("runs/a/epoch_001.pt", blob)
    logs = tmp_path / "logs"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with caplog.at_level(logging.INFO, logger="trainer"):
        start = _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert start.path is None
    assert "drive:runs/a/epoch_001.pt has no sidecar on Drive and is no checkpoint of this " \
           "trainer; Drive keeps it as it is" in caplog.text
    assert list(logs.iterdir()) == []
    there = _files(emulator)
    assert list(there) == ["epoch_001.pt"]
    assert there["epoch_001.pt"]["md5Checksum"] == hashlib.md5(blob).hexdigest()


def test_status_names_the_checkpoint_alone_on_drive_that_a_resume_takes(
        emulator, drive_env, local_state, tmp_path):
    """``trainer status`` said only "no verified checkpoint on drive:runs/a yet" (exit 1).
    (A real checkpoint: status looks inside as the take-up does, lefts44; ``best.pt`` comes
    last in the take-up's order and is not looked at.)"""
    from click.testing import CliRunner

    from test_killed_saves import _state
    from trainer.cli import cli

    emulator.add_file("runs/a/best.pt", b"x" * 64)
    saved = ckpt.save_checkpoint(_state(1, 4, 0), str(tmp_path / "made" / "epoch_001.pt"))
    with open(saved, "rb") as fh:
        emulator.add_file("runs/a/epoch_001.pt", fh.read())
    emulator.add_file("runs/a/results.csv", b"epoch\n")
    got = CliRunner().invoke(cli, ["status", "-c", tiny_run_config(tmp_path)])
    assert got.exit_code == 1
    assert got.output.splitlines()[-1] == (
        "Error: no verified checkpoint on drive:runs/a yet; drive:runs/a/epoch_001.pt is there "
        "without its sidecar (a save killed between its two uploads?): --resume auto with no "
        "checkpoint in train.out_dir goes on from it")


def test_a_resume_names_the_checkpoints_alone_on_drive_further_on_that_it_passes_over(
        emulator, drive_env, local_state, tmp_path, caplog):
    """Drive holds epoch 1 with its sidecar, and alone (the machine lost in a later save's
    uploads) ``epoch_002.pt`` and ``autosave_00000009.pt``; an older lone autosave and a lone
    ``best.pt`` too. The resume goes on from epoch 1, the newest a sidecar vouches for, as
    before; it said nothing of the two further on (what the machine's loss cost)."""
    from types import SimpleNamespace

    from test_killed_saves import _state
    from trainer.distributed import DistInfo
    from trainer.drive import DriveFolder
    from trainer.resume import choose

    there = tmp_path / "there"
    ckpt.save_checkpoint(_state(1, 4, 0), str(there / "epoch_001.pt"))
    DriveFolder("drive:runs/a", str(there)).push()
    for name in ("epoch_002.pt", "autosave_00000009.pt", "autosave_00000003.pt", "best.pt"):
        emulator.add_file(f"runs/a/{name}", name.encode() * 8)
    logs = tmp_path / "logs"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with caplog.at_level(logging.INFO, logger="trainer"):
        start = choose(cfg, "auto", DistInfo(), DriveFolder("drive:runs/a", str(logs)))
    assert start.where == "drive:runs/a/epoch_001.pt"
    said = sorted(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert said == [f"drive:runs/a/{name} has no sidecar on Drive (a save was killed between "
                    f"its two uploads?): --resume auto passes over it for "
                    f"drive:runs/a/epoch_001.pt, further back, and Drive keeps it as it is"
                    for name in ("autosave_00000009.pt", "epoch_002.pt")]
    assert sorted(p.name for p in logs.iterdir()) == ["epoch_001.json", "epoch_001.pt"]


def test_the_other_machines_fetch_the_checkpoint_taken_up_from_drive(
        emulator, drive_env, local_state, tmp_path):
    """A multi-machine run (torchrun on two machines) resumed from a checkpoint alone on
    Drive: rank 0 took it up into its run folder, and named no Drive copy of it to the other
    machines. They stopped with "… which this machine does not have at … and Drive does not
    hold": Drive did. Now rank 0 names that file, and another machine fetches it by id."""
    from types import SimpleNamespace

    from test_killed_saves import _state
    from trainer.chosen import chosen_bytes, ensure_local_checkpoint
    from trainer.drive import DriveFolder
    from trainer.resume import _decide, _drive_copy

    made = tmp_path / "made"
    ckpt.save_checkpoint(_state(1, 4, 0), str(made / "epoch_001.pt"))
    blob = (made / "epoch_001.pt").read_bytes()
    emulator.add_file("runs/a/epoch_001.pt", blob)                 # alone: no sidecar
    logs = tmp_path / "logs"
    drive = DriveFolder("drive:runs/a", str(logs))
    start = _decide(SimpleNamespace(train=SimpleNamespace(out_dir=str(logs))), "auto", drive)
    assert start.path == str(logs / "epoch_001.pt")
    chosen = chosen_bytes(start.path, start.where, _drive_copy(start, drive))
    assert chosen.entry is not None and chosen.entry.name == "epoch_001.pt"
    other = tmp_path / "machine2" / "logs" / "epoch_001.pt"
    assert ensure_local_checkpoint(str(other), chosen) == str(other)
    assert other.read_bytes() == blob


def test_status_names_the_checkpoint_alone_on_drive_that_a_resume_passes_over(
        emulator, drive_env, local_state, tmp_path):
    """Epoch 1 verified, ``epoch_002.pt`` alone: status named epoch 1 only, as if nothing
    were further on; text and ``--json`` (``passed_over``) now name it, as the resume does."""
    from click.testing import CliRunner

    from test_killed_saves import _state
    from trainer.cli import cli
    from trainer.drive import DriveFolder

    there = tmp_path / "there"
    ckpt.save_checkpoint(_state(1, 4, 0), str(there / "epoch_001.pt"))
    DriveFolder("drive:runs/a", str(there)).push()
    emulator.add_file("runs/a/epoch_002.pt", b"x" * 64)
    config = tiny_run_config(tmp_path)
    got = CliRunner().invoke(cli, ["status", "-c", config])
    assert got.exit_code == 0
    lines = got.output.splitlines()
    assert lines[1] == ("drive:runs/a/epoch_002.pt has no sidecar on Drive (a save was killed "
                        "between its two uploads?): --resume auto passes over it")
    assert re.fullmatch(r"--resume auto goes on from drive:runs/a/epoch_001\.pt: epoch 1, "
                        r"iteration 4, verified on Drive \d+ s ago", lines[2]), lines
    assert len(lines) == 3
    got = CliRunner().invoke(cli, ["status", "-c", config, "--json"])
    assert json.loads(got.output)["passed_over"] == [
        {"where": "drive:runs/a/epoch_002.pt", "why": "no sidecar on Drive"}]
