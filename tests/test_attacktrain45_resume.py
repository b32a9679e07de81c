"""attacktrain45: a resume after the world changed, as a Colab user changes it (the config
edited and the cell run again, a file put in the run folder to go on from).

* The learning rate is a pure function of the fractional epoch and ``train.epochs``,
  ``train.lr``, ``train.lr_schedule``... (trainer.optim.LRSchedule): a run extended from 1 to
  2 epochs went on at another point of another curve, a changed ``train.lr`` or
  ``train.ema: false`` (the checkpoint's EMA dropped, best.pt's mAP then of the raw weights)
  the same, and none of it was said (the warning of changed keys named the data, the shapes
  and the optimizer's settings only). Such changes may go on; they are now said in that one
  warning; so are the settings the mAP that picks ``best.pt`` is measured with
  (``train.conf_thresh``...). A run shortened below its checkpoint trained nothing, and ``fit``
  said it had run -1 epochs.
* A file under a name the run's saves write (``last.pt``...) that is another program's (a
  state dict, an Ultralytics ``.pt``) and has no sidecar: ``--resume auto`` said "starting
  fresh", and the run's first save replaced it, its weights lost. Now refused, nothing
  written.
* A file that is no pickle at all (a file of zeros a crash left, a Darknet ``.weights``):
  the message's only detail was torch's advice to load it with ``weights_only=False``.
"""
from __future__ import annotations

import hashlib
import sys
import types

import pytest
import torch
from click.testing import CliRunner

from _tiny_run import tiny_run_config
from trainer.cli import cli
from trainer.config import load_config
from trainer.engine import fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _warned(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("WARNING")]


def test_a_resume_on_another_schedule_or_ema_says_so_and_a_shortened_one_trains_nothing(
        tmp_path):
    config = tiny_run_config(tmp_path, 1, logs=None)
    fit(load_config(config), resume="none")
    logs = tmp_path / "logs"

    res = CliRunner().invoke(cli, ["train", "-c", config, "--set", "train.epochs=2", "--set",
                                   "train.lr=0.02", "--set", "train.ema=false", "--set",
                                   "train.conf_thresh=0.01"])

    assert res.exit_code == 0, res.output
    assert _warned(res.output) == [
        f"WARNING trainer.restore: {logs / 'epoch_001.pt'} was trained with another "
        "train.lr (0.01, now 0.02), train.ema (True, now False), train.conf_thresh (0.001, now "
        "0.01); training goes on with the config's"]
    # A run extended: what "train more" is, said (not warned of: a choice, made often).
    assert (f"INFO trainer.restore: {logs / 'epoch_001.pt'} was trained with train.epochs 1, "
            "the config says 2: the learning rate and the augmentation follow the schedule of "
            "2 epochs from here (epoch 1, iteration 2)") in res.output.splitlines()
    # Shortened below the checkpoint's epoch: nothing trained, and said as 0 epochs run.
    before = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in logs.glob("*.pt")}
    result = fit(load_config(config), resume="auto")
    assert result.epochs_run == 0 and result.resumed_from == str(logs / "epoch_002.pt")
    assert {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in logs.glob("*.pt")} == before

    # Another run's checkpoint copied in without its sidecar, under a name the saves write:
    # it went unseen, and the run's save of epoch 5 would have replaced it.
    other = torch.load(logs / "epoch_001.pt", weights_only=True)
    mine, other["run"] = other["run"], "20260101-000000-abcd"
    torch.save(other, logs / "epoch_005.pt")
    md5 = hashlib.md5((logs / "epoch_005.pt").read_bytes()).hexdigest()
    res = CliRunner().invoke(cli, ["train", "-c", config, "--set", "train.epochs=6"])
    assert res.exit_code == 1, res.output
    assert res.output.splitlines()[-1] == (
        f"Error: {logs / 'epoch_005.pt'} is a checkpoint of another run (run "
        f"20260101-000000-abcd; the folder's is run {mine}), and this run's saves would replace "
        f"it (epoch_005.pt is a name they write); nothing was changed. Move it out of {logs}; "
        f"to go on with that run, give it a train.out_dir of its own and --resume it, then run "
        f"the same command")
    assert hashlib.md5((logs / "epoch_005.pt").read_bytes()).hexdigest() == md5
    assert not (logs / "epoch_003.pt").exists()


def _ultralytics_pt(path, monkeypatch) -> None:
    """An Ultralytics-like checkpoint: a dict with the model pickled whole, as an object of
    the class ``ultralytics.nn.tasks.DetectionModel`` (importable where it was written only)."""
    for name in ("ultralytics", "ultralytics.nn", "ultralytics.nn.tasks"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))

    def init(self) -> None:
        torch.nn.Module.__init__(self)
        self.conv = torch.nn.Conv2d(3, 4, 1)

    model = type("DetectionModel", (torch.nn.Module,),
                 {"__module__": "ultralytics.nn.tasks", "__init__": init})
    sys.modules["ultralytics.nn.tasks"].DetectionModel = model   # type: ignore[attr-defined]
    torch.save({"epoch": -1, "model": model(), "optimizer": None}, path)


@pytest.mark.parametrize("kind", ["state_dict", "ultralytics"])
def test_another_programs_file_under_a_saved_name_is_refused_not_replaced(
        tmp_path, monkeypatch, kind):
    config = tiny_run_config(tmp_path, 1, logs=None)
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "last.pt"
    if kind == "state_dict":   # the port's weights, or this trainer's exported ones
        torch.save(torch.nn.Conv2d(3, 4, 1).state_dict(), path)
        contents = "no checkpoint of this trainer (a state dict of weights alone)"
        then = ("; to start from its weights, give its new path as model.weights to a new run "
                "(--resume none --set model.weights=<its new path>)")
    else:
        _ultralytics_pt(path, monkeypatch)
        contents = ("no checkpoint of this trainer (a pickled Python object, "
                    "ultralytics.nn.tasks.DetectionModel: another program's model)")
        then = ("; to start from its weights, save them as a state dict (torch.save(model."
                "state_dict(), PATH)) and give that as model.weights to a new run")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()

    for resume in ("auto", "none"):
        res = CliRunner().invoke(cli, ["train", "-c", config, "--resume", resume])

        assert res.exit_code == 1, res.output
        assert res.output.splitlines()[-1] == (
            f"Error: {path} is {contents}, and this run's saves "
            f"would replace it (last.pt is a name they write); nothing was changed. Move it out "
            f"of {logs}{then}, then run the same command")
        assert sorted(p.name for p in logs.iterdir()) == ["last.pt"]
        assert hashlib.md5(path.read_bytes()).hexdigest() == md5


def test_a_file_that_is_no_pickle_never_says_to_load_it_with_weights_only_false(tmp_path):
    config = tiny_run_config(tmp_path, 1, logs=None)
    zeros = tmp_path / "epoch_009.pt"           # a crash left a file of zeros
    zeros.write_bytes(b"\0" * 4096)
    darknet = tmp_path / "yolov4-tiny.weights"  # Darknet's header, then floats
    darknet.write_bytes(b"\0\0\0\0\2\0\0\0\5\0\0\0" + b"\0" * 8 + b"\0" * 400)

    said = {}
    for path in (zeros, darknet):
        res = CliRunner().invoke(cli, ["train", "-c", config, "--resume", str(path)])
        assert res.exit_code == 1, res.output
        said[path] = res.output.splitlines()[-1]
    res = CliRunner().invoke(cli, ["train", "-c", config, "--resume", "none", "--set",
                                   f"model.weights={zeros}"])
    assert res.exit_code == 1, res.output
    said["weights"] = res.output.splitlines()[-1]

    assert all("weights_only" not in line for line in said.values()), said
    assert said[zeros].startswith(f"Error: checkpoint {zeros} cannot be read (")
    assert said[zeros].endswith("); it is truncated or not a trainer checkpoint")
    assert said[darknet].startswith(
        f"Error: checkpoint {darknet} cannot be read (not a PyTorch file")
    assert said[darknet].endswith(
        "); a Darknet .weights file is no checkpoint: give it as model.weights to a new run "
        "(--resume none --set model.weights=PATH)")
