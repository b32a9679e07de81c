"""attacktrain40: ``trainer status`` with a config whose class list is the run's in another
order, or names other classes of the same count; or, for a checkpoint saved in the middle of
an epoch, another ``train.seed``.

``--resume auto`` refuses such a checkpoint before a step (restore: "it was trained on the
classes [...] and the config names [...]": each output would go on learning another class);
status compared the class count only (the model's shape), and said the run went on from it:
the user started a machine for it and met the refusal there. So with another seed in the
middle of an epoch (the rest of the epoch would be drawn in another order: attacktrain36).
Status now says that ``--resume auto`` would refuse, in restore's words.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from trainer.config import load_config
from trainer.engine import fit
from _tiny_run import tiny_run_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = "drive:runs/a"


def _config(tmp_path: Path, epochs: int = 1) -> str:
    return tiny_run_config(tmp_path, epochs, logs=SPEC)


@pytest.mark.parametrize("given", ["[square, circle]", "[cat, dog]"])
def test_status_says_resume_auto_would_refuse_another_class_list(
        tmp_path, emulator, drive_env, local_state, given):
    from trainer.cli import cli

    config = _config(tmp_path)
    fit(load_config(config), resume="none")
    trained = (tmp_path / "data" / "classes.txt").read_text().split()
    assert trained == ["circle", "square"]
    shutil.rmtree(tmp_path / "logs")       # (a fresh machine)
    status = ["status", "-c", config, "--set", f"data.classes={given}"]

    res = CliRunner().invoke(cli, status)

    assert res.exit_code == 0, res.output
    where = f"{SPEC}/epoch_001.pt"
    names = given.strip("[]").replace(" ", "").split(",")
    refusal = (f"cannot resume from {where}: it was trained on the classes [circle, square] "
               f"and the config names [{', '.join(names)}] (data.classes; a class is its place "
               f"in the list). Resume with the classes it was trained on, or start a new run "
               f"that fine-tunes from it: --resume none --set model.weights={where} --set "
               f"train.out_dir=<a new folder> (and drive.logs=<a new Drive folder> where it "
               f"is set)")
    assert res.stdout.splitlines()[1:] == [f"--resume auto would refuse: {refusal}"]
    data = json.loads(CliRunner().invoke(cli, [*status, "--json"]).stdout)
    assert data["resume_refused"] == refusal and data["resume_from"] is None

    # What status said is what the run does, of the file it fetched.
    res = CliRunner().invoke(cli, ["train", "-c", config, "--set", f"data.classes={given}"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1] == "Error: " + refusal.replace(
        where, str(tmp_path / "logs" / "epoch_001.pt"))


def test_status_says_resume_auto_would_refuse_another_seed_in_the_middle_of_an_epoch(
        tmp_path, emulator, drive_env, local_state):
    import signal

    from trainer.callbacks import Callback
    from trainer.cli import cli
    from trainer.errors import TrainingInterrupted

    class StopAt(Callback):   # (a SIGTERM after the first step of epoch 2)
        def on_train_batch_end(self, run, pos, logs):
            if pos.iteration == 3:
                run.stop.request(signal.SIGTERM)

    config = _config(tmp_path, 2)
    with pytest.raises(TrainingInterrupted):
        fit(load_config(config), resume="none", callbacks=[StopAt()])
    shutil.rmtree(tmp_path / "logs")
    where = f"{SPEC}/autosave_00000003.pt"

    res = CliRunner().invoke(cli, ["status", "-c", config, "--set", "train.seed=12"])

    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0].startswith(f"{where}: epoch 2, iteration 3")
    refusal = (f"cannot resume from {where} in the middle of epoch 2: train.seed changed since "
               f"it was saved (11 then, 12 now), and the rest of that epoch would be drawn in "
               f"another order (samples trained twice, others left out); put train.seed back "
               f"as it was, or resume with --set data.allow_change=true to go on with the new "
               f"order")
    assert res.stdout.splitlines()[1:] == [f"--resume auto would refuse: {refusal}"]
    # Allowed, or the seed it was saved with: nothing more to say.
    for more in (["--set", "train.seed=12", "--set", "data.allow_change=true"], []):
        res = CliRunner().invoke(cli, ["status", "-c", config, *more])
        assert len(res.stdout.splitlines()) == 1, res.output
