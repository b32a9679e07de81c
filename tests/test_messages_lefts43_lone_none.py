"""attacktrain42's leftovers: a checkpoint alone on Drive (a save's sidecar upload cut off,
the machine gone with its disk).

``--resume none`` in that ``drive.logs`` was not refused, as it is where a verified checkpoint
is ("one folder holds one run"): the new run's first save replaced the same-named file, the
earlier run's only checkpoint. And a ``--resume auto`` that takes such a file up warned in two
lines for one event (the local path with "(epoch 0)" for a first-epoch autosave, then Drive's)."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from _messages import renders, shown
from test_killed_saves import RUN, _state
from trainer import checkpoint as ckpt
from trainer.drive import DriveFolder
from trainer.errors import CheckpointError
from trainer.resume import _decide


def _alone_on_drive(emulator, tmp_path, name: str, position: tuple) -> bytes:
    """A real checkpoint of run RUN put on Drive as ``runs/a/<name>`` with no sidecar."""
    made = tmp_path / "made"
    ckpt.save_checkpoint(_state(*position), str(made / name))
    blob = (made / name).read_bytes()
    emulator.add_file(f"runs/a/{name}", blob)
    return blob


def _live(emulator) -> list:
    parent = emulator.find("runs/a")
    return sorted((f["title"], f["id"], f["md5Checksum"]) for f in emulator.files()
                  if not f["labels"]["trashed"] and not f["mimeType"].endswith("folder")
                  and any(p["id"] == parent["id"] for p in f.get("parents", [])))


@renders("already holds … without its sidecar")
def test_a_new_run_is_refused_where_drive_holds_a_checkpoint_alone(
        emulator, drive_env, local_state, tmp_path):
    """Refused (exit 1 through the CLI's CheckpointError) rather than written beside: a new
    run's ``epoch_001.pt`` can only be that name, and beside an old run's files it would mix
    the two runs (retention, ``--resume auto``) as a verified checkpoint's folder would."""
    _alone_on_drive(emulator, tmp_path, "epoch_001.pt", (1, 4, 0))
    before = _live(emulator)
    logs = tmp_path / "logs"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with pytest.raises(CheckpointError) as got:
        _decide(cfg, "none", DriveFolder("drive:runs/a", str(logs)))
    said = str(got.value)
    assert "\n" not in said
    assert said.startswith(
        "drive:runs/a already holds drive:runs/a/epoch_001.pt without its sidecar (a "
        "checkpoint of an earlier run, its save killed between its two uploads?); "), said
    assert "--resume auto" in said and "--set drive.logs=<a new Drive folder>" in said
    shown("already holds … without its sidecar", said)
    assert _live(emulator) == before                   # its bytes, id and md5 as they were
    assert not logs.exists() or list(logs.iterdir()) == []


@pytest.mark.parametrize("name, position, label", [
    ("epoch_001.pt", (1, 4, 0), "epoch 1, iteration 4"),
    ("autosave_00000002.pt", (0, 2, 2), "epoch 1, iteration 2")])
def test_a_checkpoint_taken_up_from_drive_is_said_in_one_line(
        emulator, drive_env, local_state, tmp_path, caplog, name, position, label):
    _alone_on_drive(emulator, tmp_path, name, position)
    logs = tmp_path / "logs"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with caplog.at_level(logging.INFO, logger="trainer"):
        start = _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert start.path == str(logs / name)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert said == [
        f"drive:runs/a/{name} has no sidecar on Drive (a save was killed between its two "
        f"uploads) and nothing else there is a checkpoint: going on from it ({label}, "
        "described from its contents)"]
    assert ckpt.read_sidecar(str(logs / name)).run == RUN
