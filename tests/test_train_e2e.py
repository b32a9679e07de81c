"""End to end through the emulator: data pulled from Drive, checkpoints mirrored with retention,
a killed run resumed from Drive alone, pretrained weights for another class count."""
from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
import torch
from click.testing import CliRunner

from trainer import checkpoint as ckpt
from trainer.callbacks import Callback
from trainer.cli import cli
from trainer.config import load_config
from trainer.engine import fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def drive(emulator, drive_env, tmp_path, monkeypatch):
    """The emulator, with drivestage's state and retry timings kept inside the test."""
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "ds-state"))
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.05")
    return emulator


def _remote(emu, folder="Models/t/logs"):
    """{name: md5} of the live files directly in ``folder`` on the emulator's Drive."""
    parent = emu.find(folder)
    assert parent is not None, f"{folder} not on Drive"
    return {f["title"]: f.get("md5Checksum") for f in emu.files()
            if not f["labels"]["trashed"] and any(p["id"] == parent["id"] for p in f.get("parents", []))
            and not f["mimeType"].endswith(".folder")}


def _md5(path):
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _DieAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, run, pos, logs):
        if pos.iteration == self.step:
            raise KeyboardInterrupt


def _drive_config(tiny_config, **kw):
    return tiny_config(**{"drive.logs": "drive:Models/t/logs", "drive.keep_last": 2, "drive.keep_best": 1,
                          "train.save_period": 1, **kw})


@pytest.mark.slow
def test_checkpoints_land_on_drive_with_the_retention_applied(drive, tiny_config, tmp_path):
    cfg = load_config(_drive_config(tiny_config, **{"train.epochs": 3, "train.eval_period": 1,
                                                    "drive.keep_last": 1}))
    fit(cfg, resume="none")
    logs = tmp_path / "logs"
    best_epoch = max((ckpt.read_sidecar(str(logs / f"epoch_{e:03d}.pt")).metrics["map50"], e)
                     for e in (1, 2, 3))[1]
    kept = {3, best_epoch}   # keep_last 1 (the newest) + keep_best 1 (by map50 in the sidecars)
    remote = _remote(drive)
    checkpoints = {n for n in remote if n.endswith((".pt", ".json"))}
    assert checkpoints == {f"epoch_{e:03d}.{x}" for e in kept for x in ("pt", "json")} | {"best.pt", "best.json"}
    for name in ("best.pt", f"epoch_{3:03d}.pt", "results.csv"):
        assert remote[name] == _md5(logs / name), name
    assert {"loss.png", "map.png"} <= set(remote)
    assert "last.pt" not in remote


@pytest.mark.slow
def test_killed_run_resumes_from_drive_into_an_empty_folder(drive, tiny_config, tmp_path):
    kw = {"train.epochs": 3, "train.eval_period": 2}
    path = _drive_config(tiny_config, **kw, **{"train.save_period": 2})
    ref = fit(load_config(tiny_config(**kw, **{"train.out_dir": str(tmp_path / "ref")})), resume="none")
    with pytest.raises(KeyboardInterrupt):
        fit(load_config(path), resume="none", callbacks=[_DieAt(5)])   # dies in epoch 3
    remote = _remote(drive)
    assert {"epoch_002.pt", "epoch_002.json", "best.pt", "best.json"} <= set(remote)  # flushed
    # As if the runtime had died before best.pt reached Drive:
    from drivestage.drive import connect

    store = connect()
    for name in ("best.pt", "best.json"):
        store.delete(store.resolve(f"Models/t/logs/{name}"))
    shutil.rmtree(tmp_path / "logs")                                   # a fresh runtime

    res = CliRunner().invoke(cli, ["train", "-c", path, "--resume", "auto"])
    assert res.exit_code == 0, res.output
    assert "final mAP@0.5 = " in res.output
    # Closing the runtime is safe once the run says so (it named the local folder only).
    assert res.stdout.splitlines()[-1] == (f"checkpoints in {tmp_path / 'logs'} and on "
                                           "drive:Models/t/logs (every upload verified)")
    state = ckpt.load_checkpoint(str(tmp_path / "logs" / "last.pt"))
    assert state["epoch"] == 3 and state["iteration"] == 6 and len(state["history"]) == 3
    assert state["resumed_from"] == "epoch_002.pt"
    # Resuming from Drive loses nothing: the same weights as a run that was never interrupted.
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, state["model"][k]), k
    remote = _remote(drive)
    assert {"epoch_002.pt", "epoch_003.pt", "best.pt"} <= set(remote)
    # The sidecar on Drive still carries the metrics retention ranks by; best.pt was rebuilt.
    side = json.loads(drive.read_bytes(drive.find("Models/t/logs/epoch_002.json")["id"]))
    assert set(side["metrics"]) == {"val_loss", "map50", "map"}
    best = ckpt.read_sidecar(str(tmp_path / "logs" / "best.pt"))
    assert best.epoch == state["best_epoch"]
    assert remote["best.pt"] == _md5(tmp_path / "logs" / "best.pt")


@pytest.mark.slow
def test_dataset_zip_is_pulled_from_drive_and_splits_resolved(drive, synth_voc, tiny_config, tmp_path):
    drive.add_file("VOC_datasets/synth.zip", str(synth_voc.zip_path))
    path = tiny_config(**{"data.drive_zip": "drive:VOC_datasets/synth.zip", "data.train": "train",
                          "data.val": "val", "data.classes": ["circle", "square", "triangle"],
                          "train.epochs": 1, "train.freeze_epochs": 0})
    res = CliRunner().invoke(cli, ["train", "-c", path])
    assert res.exit_code == 0, res.output
    voc = tmp_path / "data" / "VOCdevkit" / "VOC2007"
    assert (voc / "Annotations").is_dir()
    assert len(list((tmp_path / "data" / ".drivestage-trainer" / "annotations").glob(
        "*/2007_train.txt"))) == 1
    n_train = len((voc / "ImageSets" / "Main" / "train.txt").read_text().split())
    assert ckpt.load_checkpoint(str(tmp_path / "logs" / "last.pt"))["iteration"] == n_train // 8


def test_a_drive_folder_of_archives_can_be_the_dataset(drive, synth_voc, tiny_config, tmp_path):
    """data.drive_zip may name a folder: it is pulled whole, its archives extracted in place."""
    from trainer.engine import stage_data

    drive.add_file("VOC_datasets/synth.zip", str(synth_voc.zip_path))
    drive.add_file("VOC_datasets/README.txt", b"the synthetic set")
    path = tiny_config(**{"data.drive_zip": "drive:VOC_datasets", "data.train": "train",
                          "data.val": "val", "data.classes": ["circle", "square", "triangle"]})
    spec = stage_data(load_config(path))
    staged = tmp_path / "data" / "VOC_datasets"
    assert spec.voc_root == str(staged / "VOCdevkit")
    assert (staged / "README.txt").read_bytes() == b"the synthetic set"
    n_train = len((staged / "VOCdevkit/VOC2007/ImageSets/Main/train.txt").read_text().split())
    assert len(spec.train_lines) == n_train > 0


def test_weights_for_another_class_count_skip_the_head_with_a_report(tiny_config, tmp_path, caplog):
    from trainer.model import YoloV4Tiny

    other = YoloV4Tiny(20, input_size=64)
    torch.save(other.state_dict(), tmp_path / "voc20.pth")
    path = tiny_config(**{"model.weights": str(tmp_path / "voc20.pth"), "model.width": 1.0,
                          "train.epochs": 1,
                          "train.freeze_epochs": 1})
    with caplog.at_level("INFO", logger="trainer"):
        fit(load_config(path), resume="none")
    text = caplog.text
    assert "skipped yolo_headP5.1.weight" in text and "skipped yolo_headP4.1.weight" in text
    assert "loaded" in text
    # The frozen backbone kept the pretrained weights exactly.
    state = ckpt.load_checkpoint(str(tmp_path / "logs" / "last.pt"))["model"]
    key = "backbone.conv1.conv.weight"
    assert torch.equal(state[key], other.state_dict()[key])


def test_missing_weights_file_is_a_config_error(tiny_config, tmp_path):
    res = CliRunner().invoke(cli, ["train", "-c", tiny_config(**{"model.weights": str(tmp_path / "no.pth")})])
    assert res.exit_code == 2
    assert f"Error: model.weights: file not found: {tmp_path / 'no.pth'}" in res.output
