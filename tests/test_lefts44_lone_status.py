"""lefts44: ``trainer status`` where Drive holds only checkpoints without their sidecar (a
machine lost between a push's two uploads: :mod:`trainer.drive_lone`) named the first of them
in the take-up's order without looking inside: where that file is no checkpoint (other
bytes, a damaged file), ``--resume auto`` passes on to the next (attack43) and status still
said it goes on from the first. It now looks inside as the take-up does (each fetched into a
temporary folder, described from its contents; the run folder and Drive untouched) and names
the file the resume takes up, or says it starts fresh where none is a checkpoint."""
from __future__ import annotations

import logging
import shutil
import time
from types import SimpleNamespace

from click.testing import CliRunner

from _tiny_run import tiny_run_config
from test_killed_saves import _state
from trainer import checkpoint as ckpt
from trainer.drive import DriveFolder
from trainer.resume import _decide

_HEAD = "Error: no verified checkpoint on drive:runs/a yet; "


def _status(tmp_path) -> tuple[int, str]:
    got = CliRunner().invoke(__import__("trainer.cli", fromlist=["cli"]).cli,
                             ["status", "-c", tiny_run_config(tmp_path)])
    return got.exit_code, got.output.splitlines()[-1]


def _on_drive(emulator) -> list:
    return sorted((f["title"], f.get("md5Checksum")) for f in emulator.files()
                  if not f["mimeType"].endswith(".folder") and not f["labels"]["trashed"])


def test_status_names_the_lone_checkpoint_the_resume_takes_up(emulator, drive_env, local_state,
                                                             tmp_path, caplog):
    made = tmp_path / "made"
    path = ckpt.save_checkpoint(_state(1, 4, 0), str(made / "epoch_001.pt"))
    with open(path, "rb") as fh:
        first = emulator.add_file("runs/a/epoch_001.pt", fh.read())
    emulator.store.update(first, modified=time.time() - 60)
    emulator.add_file("runs/a/epoch_002.pt", b"not a checkpoint" * 10)   # (first in order)
    logs = tmp_path / "logs"
    before = _on_drive(emulator)
    code, line = _status(tmp_path)
    assert code == 1
    assert line == (
        _HEAD + "drive:runs/a/epoch_001.pt is there without its sidecar (a save killed between "
        "its two uploads?): --resume auto with no checkpoint in train.out_dir goes on from it "
        "(it passes over drive:runs/a/epoch_002.pt: no checkpoint of this trainer)"), line
    assert not logs.exists() or list(logs.iterdir()) == []   # (looked inside elsewhere)
    assert _on_drive(emulator) == before
    # What the resume does: the same file.
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with caplog.at_level(logging.INFO, logger="trainer"):
        start = _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert start.path == str(logs / "epoch_001.pt")
    # None of them a checkpoint: status says the resume starts fresh, and it does.
    shutil.rmtree(logs)
    emulator.store.delete(first)
    code, line = _status(tmp_path)
    assert code == 1
    assert line == (
        _HEAD + "drive:runs/a/epoch_002.pt is there without a sidecar and is no checkpoint of "
        "this trainer: --resume auto with no checkpoint in train.out_dir starts fresh"), line
    start = _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert start.path is None
