"""trainer22's messages (docs/troubleshooting.md), each made to happen through the real CLI."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from _messages import error_line, error_text, renders, shown
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from trainer.cli import cli

MiB = 1 << 20
STATUS_MISSING = ("not found (…); no run has saved there yet: a run makes it at its first "
                  "save, or drive.logs names the wrong folder")


@renders(STATUS_MISSING)
def test_status_before_a_runs_first_save_says_so_not_check_drive_logs(emulator, drive_env,
                                                                      local_state, tiny_config):
    """`trainer status` while a run is starting (its folder not made yet) ended `...; a run
    makes it at its first save: check drive.logs`, which read like a typo (walk21)."""
    emulator.add_folder("Models/demo")
    cfg = tiny_config(**{"drive.logs": "drive:Models/demo/logs"})
    r = CliRunner().invoke(cli, ["status", "-c", cfg])
    assert r.exit_code == 1, r.output
    line = error_line(r.stderr)
    assert line == ("Error: drive.logs drive:Models/demo/logs not found (no item named 'logs' in "
                    "drive:Models/demo; names are case-sensitive); no run has saved there yet: a "
                    "run makes it at its first save, or drive.logs names the wrong folder")
    shown(STATUS_MISSING, line)


@renders("not enough free disk space in … for the checkpoint of epoch …")
def test_the_cli_says_the_disk_is_too_small_in_one_line(tiny_config, small_disk, one_torch_thread):
    """Before: the first epoch trained, then `could not write the checkpoint of epoch 1`."""
    disk = small_disk(100 * MiB)
    r = CliRunner().invoke(cli, ["train", "-c", tiny_config(**{
        "model.width": 1.0,  # (a 70 MB checkpoint: the disk above holds less)
        "train.out_dir": str(disk / "logs"), "train.freeze_epochs": 0, "train.epochs": 1,
        "train.mosaic": False, "train.mixup": False}), "--resume", "none"])
    assert r.exit_code == 1, r.output
    line = error_line(r.stderr)
    assert line.startswith(f"Error: not enough free disk space in {disk / 'logs'} for the "
                           "checkpoint of epoch 1: its save writes last.pt, epoch_001.pt, best.pt")
    assert "Traceback" not in r.output
    shown("not enough free disk space in … for the checkpoint of epoch …", line)


@renders("Invalid value for '--device': … give auto, cpu, cuda, cuda:N or mps")
def test_predict_on_a_device_it_cannot_use_is_a_usage_error(tmp_path):
    from test_trainer22_device import _predict

    r = _predict(_setup(tmp_path), "meta")
    assert r.exit_code == 2, r.output
    shown("Invalid value for '--device': … give auto, cpu, cuda, cuda:N or mps", error_line(r.stderr))


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a machine with a CUDA GPU")
@renders("--device …: no … is available here; use --device cpu")
def test_predict_on_a_gpu_this_machine_lacks_is_exit_1(tmp_path):
    from test_trainer22_device import _predict

    r = _predict(_setup(tmp_path), "cuda")
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == ("Error: --device cuda: no CUDA GPU is available here; use "
                                    "--device cpu")
    shown("--device …: no … is available here; use --device cpu", error_line(r.stderr))


def _setup(tmp_path):
    import torch

    from trainer.model import YoloV4Tiny

    torch.save(YoloV4Tiny(num_classes=2, input_size=64).state_dict(), tmp_path / "w.pth")
    (tmp_path / "cls.txt").write_text("a\nb\n")
    (tmp_path / "imgs").mkdir()
    return tmp_path


@renders("hold NaN or infinite values (…): the run had diverged when it was saved",
         "the EMA does not match the model (", "the optimizer state does not match the model (")
def test_resume_from_a_checkpoint_that_is_no_state_to_train_on(tiny_config, tmp_path):
    from test_trainer22_hostile import (_ema_of_another_shape, _inf_ema,
                                        _momentum_of_another_shape, _small_run)
    from trainer import checkpoint as ckpt
    from trainer.errors import CheckpointError
    from trainer.resume import Start, restore
    from trainer.saving import snapshot

    for i, (change, heading) in enumerate((
            (_inf_ema, "hold NaN or infinite values (…): the run had diverged when it was saved"),
            (_ema_of_another_shape, "the EMA does not match the model ("),
            (_momentum_of_another_shape, "the optimizer state does not match the model ("))):
        run = _small_run(tiny_config, tmp_path / f"logs{i}")
        state = snapshot(run)
        state.update(epoch=1, iteration=2, epoch_iteration=0)
        change(state)
        path = ckpt.save_checkpoint(state, str(tmp_path / f"logs{i}" / "epoch_001.pt"))
        with pytest.raises(CheckpointError) as refused:
            restore(_small_run(tiny_config, tmp_path / f"other{i}"), Start(run="n", path=path))
        shown(heading, error_text(refused.value))


@renders("holds checkpoints of two runs: …, written last, and …; going on with either would "
         "overwrite the other's files")
def test_a_run_folder_with_two_runs_is_refused(tiny_config, tmp_path):
    from click.testing import CliRunner

    from test_trainer22_hostile import _plain
    from trainer import checkpoint as ckpt

    logs = tmp_path / "logs"
    ckpt.save_checkpoint(_plain(3, "20260101-000000-aaaa"), str(logs / "last.pt"), saved=1000.0)
    ckpt.save_checkpoint(_plain(2, "20260202-000000-bbbb"), str(logs / "best.pt"), saved=2000.0)
    r = CliRunner().invoke(cli, ["train", "-c", tiny_config(**{"train.out_dir": str(logs)})])
    assert r.exit_code == 1, r.output
    shown("holds checkpoints of two runs: …, written last, and …; going on with either would "
          "overwrite the other's files", error_line(r.stderr))
