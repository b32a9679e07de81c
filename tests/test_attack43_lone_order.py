"""attack43: checkpoints alone on Drive (a machine lost between a push's checkpoints and
their sidecars, nothing on Drive vouched for yet: :mod:`trainer.drive_lone`) that arrived
out of order. A push sends its checkpoints several at once (its jobs), so after Drive was
down for two epochs the push sending ``epoch_001.pt`` and ``epoch_002.pt`` may complete
``epoch_001.pt`` last. The fresh machine's resume took the newest to arrive: it went back to
epoch 1 and trained epoch 2 again (and ``trainer status`` named epoch 1 as where it goes
on). Of one kind, the name says which is further on: ``epoch_002.pt``."""
from __future__ import annotations

import logging
import time
from types import SimpleNamespace

from click.testing import CliRunner

from _tiny_run import tiny_run_config
from test_killed_saves import RUN, _state
from trainer import checkpoint as ckpt
from trainer.drive import DriveFolder
from trainer.resume import _decide


def test_the_checkpoint_alone_on_drive_furthest_on_is_taken_up_whatever_arrived_last(
        emulator, drive_env, local_state, tmp_path, caplog):
    made = tmp_path / "made"
    now = time.time()
    # epoch 2's arrived first, epoch 1's a minute later (jobs=4: either may end first).
    for at, (name, epoch, iteration) in enumerate([("epoch_002.pt", 2, 8),
                                                   ("epoch_001.pt", 1, 4)]):
        path = ckpt.save_checkpoint(_state(epoch, iteration, 0), str(made / name))
        with open(path, "rb") as fh:
            fid = emulator.add_file(f"runs/a/{name}", fh.read())
        emulator.store.update(fid, modified=now - 120 + 60 * at)
    got = CliRunner().invoke(__import__("trainer.cli", fromlist=["cli"]).cli,
                             ["status", "-c", tiny_run_config(tmp_path)])
    assert got.exit_code == 1
    assert got.output.splitlines()[-1].endswith(
        "; drive:runs/a/epoch_002.pt is there without its sidecar (a save killed between its "
        "two uploads?): --resume auto with no checkpoint in train.out_dir goes on from it")
    logs = tmp_path / "logs"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with caplog.at_level(logging.INFO, logger="trainer"):
        start = _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert start.path == str(logs / "epoch_002.pt")
    assert ckpt.load_checkpoint(start.path)["iteration"] == 8
    assert ckpt.read_sidecar(start.path).run == RUN
    assert sorted(p.name for p in logs.iterdir()) == ["epoch_002.json", "epoch_002.pt"]


def test_a_file_alone_on_drive_that_is_no_checkpoint_passes_to_the_next_that_is(
        emulator, drive_env, local_state, tmp_path, caplog):
    """The newest to arrive, and furthest on by its name, ``epoch_002.pt``, is no checkpoint
    (other bytes); ``epoch_001.pt`` alone there is. The resume said so of epoch 2 and started
    afresh: its first save then replaced epoch 1's file on Drive. Now it goes on from
    epoch 1; Drive keeps both as they are."""
    made = tmp_path / "made"
    path = ckpt.save_checkpoint(_state(1, 4, 0), str(made / "epoch_001.pt"))
    with open(path, "rb") as fh:
        first = emulator.add_file("runs/a/epoch_001.pt", fh.read())
    emulator.store.update(first, modified=time.time() - 60)
    emulator.add_file("runs/a/epoch_002.pt", b"not a checkpoint" * 10)
    logs = tmp_path / "logs"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with caplog.at_level(logging.INFO, logger="trainer"):
        start = _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert start.path == str(logs / "epoch_001.pt")
    said = [r.getMessage() for r in caplog.records if r.name == "trainer.drive_lone"]
    assert said == [
        "drive:runs/a/epoch_002.pt has no sidecar on Drive and is no checkpoint of this "
        "trainer; Drive keeps it as it is",
        "drive:runs/a/epoch_001.pt has no sidecar on Drive (a save was killed between its two "
        "uploads) and nothing else there is a checkpoint: going on from it (epoch 1, "
        "iteration 4, described from its contents)"]
    assert sorted(p.name for p in logs.iterdir()) == ["epoch_001.json", "epoch_001.pt"]
    assert sorted(f["title"] for f in emulator.files()
                  if not f["mimeType"].endswith(".folder")) == ["epoch_001.pt", "epoch_002.pt"]
