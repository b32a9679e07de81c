"""trainres48 (3): ``model.weights`` gone (a fresh VM), the run folder empty, and the run's
checkpoints on ``drive.logs``: the early check (before the data is pulled) finds one there and
lets the resume go on. Deleted on Drive while the data is pulled (another machine's retention,
a user's delete), the resume found none and "started fresh" into the missing weights file: a
refusal after the pull that said nothing of what happened. Now the resume takes the newest
checkpoint left, saying which one went; none left, it refuses in one line that says what
happened and what to do, before a new run starts. The delete comes while the dataset's
archive is downloaded: the emulator holds that download at its middle byte (no sleeps)."""
from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from _once import config_like
from _one_epoch import one_epoch  # noqa: F401  (a fixture)
from trainer import checkpoint as ckpt
from trainer.cli import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = "drive:Models/tr48v/logs"


def _run(emulator, synth_voc, one_epoch, tmp_path, doomed: tuple[str, ...]):
    """Drive holds the run's epoch_001.pt and last.pt, with sidecars; ``train --resume auto``
    with model.weights gone, an empty run folder, and the dataset pulled from Drive, during
    whose download ``doomed`` (names in drive.logs) are deleted. Its result, folder, weights."""
    import yaml

    ids = {name: emulator.add_file(f"Models/tr48v/logs/{name}",
                                   (one_epoch / "logs" / name).read_bytes())
           for name in ("epoch_001.pt", "epoch_001.json", "last.pt", "last.json")}
    data = synth_voc.zip_path.read_bytes()
    archive = emulator.add_file("VOC_datasets/synth.zip", data)
    logs = tmp_path / "logs"
    gone = str(tmp_path / "cleared" / "yolov4_tiny_weights_voc.pth")
    config = config_like(one_epoch, logs, **{
        "train.epochs": 2, "model.weights": gone, "train.eval_period": 100,
        "data.drive_zip": "drive:VOC_datasets/synth.zip", "data.train": "train",
        "data.val": "val"})
    cfg = yaml.safe_load(open(config).read())
    cfg["drive"] = {"logs": SPEC}
    open(config, "w").write(yaml.safe_dump(cfg))
    hold = emulator.faults.hold(archive, len(data) // 2, timeout=60)
    deleted = threading.Event()

    def delete() -> None:   # (the early check has listed Drive: the pull comes after it)
        if hold.reached.wait(60):
            for name in doomed:
                emulator.store.delete(ids[name])
            deleted.set()
        hold.release()

    threading.Thread(target=delete, daemon=True).start()
    result = CliRunner().invoke(cli, ["train", "-c", config, "--resume", "auto"])
    assert deleted.is_set(), result.output
    return result, logs, gone


def test_the_newest_deleted_during_the_pull_resumes_from_the_next_and_says_so(
        emulator, drive_env, local_state, synth_voc, one_epoch, tmp_path):
    result, logs, _ = _run(emulator, synth_voc, one_epoch, tmp_path, ("last.json", "last.pt"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (f"WARNING trainer.start_weights: {SPEC}/last.pt, there when this run started, is "
            "gone (deleted or pruned since); --resume auto goes on from the newest checkpoint "
            "there now") in lines, result.output
    assert f"INFO trainer.restore: resumed from {SPEC}/epoch_001.pt at epoch 1, iteration 2 " \
        in "\n".join(lines) + " ", result.output
    assert ckpt.read_sidecar(str(logs / "last.pt")).epoch == 2


def test_every_checkpoint_deleted_during_the_pull_refuses_in_one_line(
        emulator, drive_env, local_state, synth_voc, one_epoch, tmp_path):
    result, logs, gone = _run(emulator, synth_voc, one_epoch, tmp_path,
                              ("last.json", "last.pt", "epoch_001.json", "epoch_001.pt"))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: model.weights: file not found: {gone} (--resume auto finds no checkpoint to go "
        f"on from: {SPEC}/epoch_001.pt, {SPEC}/last.pt, there when this run started, were "
        f"deleted or pruned since, and {logs} holds none; put the weights file back to start a "
        f"new run, or --resume a checkpoint file you have)")
    assert "starting fresh" not in result.output
    assert not ckpt.list_checkpoints(str(logs))


def test_every_checkpoint_deleted_as_the_resume_fetches_them_says_so(
        emulator, drive_env, local_state, synth_voc, one_epoch, tmp_path):
    """Deleted after the resume listed them (its read of last.json held): each fetch finds
    the file gone. The refusal says they were deleted, not that they "cannot be read"."""
    import yaml

    ids = {name: emulator.add_file(f"Models/tr48v/logs/{name}",
                                   (one_epoch / "logs" / name).read_bytes())
           for name in ("epoch_001.pt", "epoch_001.json", "last.pt", "last.json")}
    logs = tmp_path / "logs"
    gone = str(tmp_path / "cleared" / "yolov4_tiny_weights_voc.pth")
    config = config_like(one_epoch, logs, **{"train.epochs": 2, "model.weights": gone})
    cfg = yaml.safe_load(open(config).read())
    cfg["drive"] = {"logs": SPEC}
    open(config, "w").write(yaml.safe_dump(cfg))
    # The early check's read of last.json is held at its second byte; the resume's, armed
    # while that one waits, at its first: then the checkpoints (not their sidecars) go.
    early = emulator.faults.hold(ids["last.json"], 1, timeout=60)
    deleted = threading.Event()

    def delete() -> None:
        if early.reached.wait(60):
            resume = emulator.faults.hold(ids["last.json"], 0, timeout=60)
            early.release()
            if resume.reached.wait(60):
                for name in ("last.pt", "epoch_001.pt"):
                    emulator.store.delete(ids[name])
                deleted.set()
            resume.release()
        early.release()

    threading.Thread(target=delete, daemon=True).start()
    result = CliRunner().invoke(cli, ["train", "-c", config, "--resume", "auto"])
    assert deleted.is_set(), result.output
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: the checkpoints of run {ckpt.read_sidecar(str(one_epoch / 'logs' / 'last.pt')).run} "
        f"on {SPEC} were deleted while this resume fetched them (epoch_001.pt, last.pt: "
        f"another machine's retention, a user?); --resume auto finds none left to go on from. "
        f"Start over with --resume none in new folders, or --resume a checkpoint file you have")
    assert not ckpt.list_checkpoints(str(logs))
