"""attack44: hostile titles beside checkpoints alone on Drive (:mod:`trainer.drive_lone`).

A title of 5,000 digits (``epoch_999…9.pt``) raised int()'s ValueError in the lone files'
order: ``trainer status`` and every resume of the run stopped with it. A title of a
checkpoint's shape but 300 characters long (``epoch_1xxx….pt``), the newest to arrive, was
fetched whole and then failed on the local name's length (ENAMETOOLONG): the resume stopped
with a traceback. And of epochs 1, 2 and 3 alone there, 3 no checkpoint, the take-up passed
from 3 to the one that arrived last (1), not to 2, further on."""
from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from _tiny_run import tiny_run_config
from test_killed_saves import RUN, _state
from trainer import checkpoint as ckpt
from trainer.drive import DriveFolder
from trainer.errors import CheckpointError
from trainer.resume import _decide


def lone_epochs(emulator, made) -> None:
    """Epochs 1 and 2 on Drive in runs/a alone (no sidecars), 2 the later, each a real
    checkpoint (made in ``made``)."""
    now = time.time()
    for epoch in (1, 2):
        path = ckpt.save_checkpoint(_state(epoch, 4 * epoch, 0), str(made / f"e{epoch}.pt"))
        with open(path, "rb") as fh:
            fid = emulator.add_file(f"runs/a/epoch_00{epoch}.pt", fh.read())
        emulator.store.update(fid, modified=now - 100 + 10 * epoch)


def _only(emulator, keep: str) -> None:
    """Leave only ``keep`` in runs/a (the others removed for good)."""
    for f in emulator.files():
        if not f["mimeType"].endswith(".folder") and f["title"] != keep:
            emulator.store.delete(f["id"])


def test_hostile_titles_beside_lone_checkpoints_are_passed_and_epochs_taken_in_name_order(
        emulator, drive_env, local_state, tmp_path, caplog):
    made, now = tmp_path / "made", time.time()
    real = {}
    for epoch in (1, 2):
        path = ckpt.save_checkpoint(_state(epoch, 4 * epoch, 0),
                                    str(made / f"epoch_00{epoch}.pt"))
        with open(path, "rb") as fh:
            real[epoch] = fh.read()
    # Arrival order: epoch 2, epoch 3 (no checkpoint), epoch 1, then the two hostile titles,
    # then another tool's last.pt (the trainer never sends its own: MIRROR_EXCLUDE).
    for at, (name, data) in enumerate([
            ("epoch_002.pt", real[2]), ("epoch_003.pt", b"not a checkpoint" * 10),
            ("epoch_001.pt", real[1]), ("epoch_" + "9" * 5000 + ".pt", b"digits" * 10),
            ("epoch_1" + "x" * 300 + ".pt", real[1]), ("last.pt", b"ultralytics" * 10)]):
        fid = emulator.add_file(f"runs/a/{name}", data)
        emulator.store.update(fid, modified=now - 300 + 60 * at)
    logs = tmp_path / "taken"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with caplog.at_level(logging.INFO, logger="trainer"):
        start = _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert start.path == str(logs / "epoch_002.pt")
    assert ckpt.load_checkpoint(start.path)["iteration"] == 8
    assert ckpt.read_sidecar(start.path).run == RUN
    assert [r.getMessage() for r in caplog.records if r.name == "trainer.drive_lone"] == [
        "drive:runs/a/epoch_003.pt has no sidecar on Drive and is no checkpoint of this "
        "trainer; Drive keeps it as it is",
        "drive:runs/a/epoch_002.pt has no sidecar on Drive (a save was killed between its two "
        "uploads) and nothing else there is a checkpoint: going on from it (epoch 2, "
        "iteration 8, described from its contents)"]
    assert sorted(p.name for p in logs.iterdir()) == ["epoch_002.json", "epoch_002.pt"]
    assert len([f for f in emulator.files() if not f["mimeType"].endswith(".folder")]) == 6
    got = CliRunner().invoke(__import__("trainer.cli", fromlist=["cli"]).cli,
                             ["status", "-c", tiny_run_config(tmp_path)])
    assert got.exit_code == 1, (got.output, got.exception)
    # Status names the one the take-up went on from, and the one it passed over (lefts44).
    assert got.output.splitlines()[-1] == (
        "Error: no verified checkpoint on drive:runs/a yet; drive:runs/a/epoch_002.pt is there "
        "without its sidecar (a save killed between its two uploads?): --resume auto with no "
        "checkpoint in train.out_dir goes on from it (it passes over drive:runs/a/epoch_003.pt: "
        "no checkpoint of this trainer)")
    # A new run where only another tool's last.pt is there: not refused as "an earlier
    # run's checkpoint without its sidecar" (its saves never go there under that name).
    _only(emulator, "last.pt")
    fresh = tmp_path / "fresh"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(fresh)))
    assert _decide(cfg, "none", DriveFolder("drive:runs/a", str(fresh))).path is None
    assert [f["title"] for f in emulator.files() if not f["mimeType"].endswith(".folder")] \
        == ["last.pt"]


def test_a_file_here_that_is_no_checkpoint_under_a_lone_checkpoints_name_stops_the_resume(
        emulator, drive_env, local_state, tmp_path):
    """The run folder holds ``epoch_002.pt`` that does not load; Drive holds epochs 1 and 2
    alone (no sidecars). The take-up, never fetching over it, started the run afresh: its
    first saves replaced both files on Drive, an earlier run's only copies. Now refused in one
    line, nothing touched; once that file is moved away the resume goes on from epoch 2."""
    lone_epochs(emulator, tmp_path / "made")
    before = sorted((f["title"], f["md5Checksum"]) for f in emulator.files()
                    if not f["mimeType"].endswith(".folder"))
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "epoch_002.pt").write_bytes(b"not a checkpoint")
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with pytest.raises(CheckpointError) as got:
        _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert str(got.value) == (
        f"{logs / 'epoch_002.pt'} does not load as a checkpoint, and drive:runs/a/epoch_002.pt "
        f"has its name on Drive without its sidecar (a save killed between its two uploads?), "
        f"which --resume auto would go on from; move {logs / 'epoch_002.pt'} away and run "
        f"again")
    assert sorted(p.name for p in logs.iterdir()) == ["epoch_002.pt"]
    assert (logs / "epoch_002.pt").read_bytes() == b"not a checkpoint"
    assert sorted((f["title"], f["md5Checksum"]) for f in emulator.files()
                  if not f["mimeType"].endswith(".folder")) == before
    (logs / "epoch_002.pt").rename(tmp_path / "aside.pt")
    start = _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert start.path == str(logs / "epoch_002.pt")
    assert ckpt.load_checkpoint(start.path)["iteration"] == 8
