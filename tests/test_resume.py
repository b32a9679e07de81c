"""Resume: an interrupted run continues at the right epoch and iteration with the same lr and
reaches the same weights as an uninterrupted one; a changed model shape is refused."""
from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import time

import pytest
from click.testing import CliRunner

from trainer import checkpoint as ckpt
from _once import config_like, shared_run
from trainer.callbacks import Callback
from trainer.cli import cli
from trainer.config import load_config
from trainer.engine import fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Recorder(Callback):
    """Records (iteration, lr, loss) of every iteration; optionally dies at a given iteration."""

    def __init__(self, die_at_step=None):
        self.rows, self.die_at_step = [], die_at_step

    def on_train_batch_end(self, run, pos, logs):
        self.rows.append((pos.iteration, logs["lr"], logs["loss"]))
        if pos.iteration == self.die_at_step:
            raise KeyboardInterrupt  # the runtime vanished in the middle of an epoch


def _weights(path):
    return ckpt.load_checkpoint(path)["model"]


def _max_abs_diff(a, b):
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


#: The interrupted runs' settings: 18 images, batch 8: 2 steps an epoch; epoch 3 (of 4) has
#: steps 5-6 and leaves a whole epoch after it (time for a kill to land before the run ends).
FOUR = {"train.epochs": 4, "train.eval_period": 4, "train.save_period": 2}
#: The settings of ``one_epoch`` (the tiny config's others: eval and save after every epoch;
#: tests/test_engine.py shares the same run).
ONE = {"train.epochs": 1, "train.freeze_epochs": 0}


@pytest.fixture(scope="module")
def uninterrupted(synth_voc, tmp_path_factory):
    """``(folder, rows)``: a run of ``FOUR`` never interrupted, in ``folder / "logs"``, and its
    (iteration, lr, loss) at every step: what every interrupted run here must reach."""
    folder, made = shared_run(synth_voc, tmp_path_factory, "resume-four", FOUR, [_Recorder()])
    return folder, made["rows"][0]


@pytest.fixture(scope="module")
def one_epoch(synth_voc, tmp_path_factory):
    """``(folder, final)``: a finished run of ``ONE`` in ``folder / "logs"`` (a test copies it)."""
    folder, made = shared_run(synth_voc, tmp_path_factory, "tiny-one-epoch", ONE)
    return folder, made["final"]


def _one_epoch_here(one_epoch, out_dir, **kw) -> str:
    """``out_dir`` holds a copy of ``one_epoch``'s folder; the path of its config there."""
    shutil.copytree(one_epoch[0] / "logs", out_dir)
    return config_like(one_epoch[0], out_dir, **kw)


@pytest.mark.slow
def test_interrupted_mid_epoch_then_resumed_matches_an_uninterrupted_run(tmp_path, caplog, uninterrupted):
    made, full_rows = uninterrupted
    ref = made / "logs"
    path = config_like(made, tmp_path / "b")
    crash = _Recorder(die_at_step=5)             # epoch 3 (steps 5-6), after its first iteration
    with pytest.raises(KeyboardInterrupt), caplog.at_level(logging.INFO, logger="trainer"):
        fit(load_config(path), resume="auto", callbacks=[crash])
    assert "Drive mirror" not in caplog.text  # no drive.logs: nothing to flush
    assert ckpt.read_sidecar(str(tmp_path / "b" / "last.pt")).epoch == 2
    crashed_run = ckpt.read_sidecar(str(tmp_path / "b" / "last.pt")).run

    resumed = _Recorder()
    result = fit(load_config(path), resume="auto", callbacks=[resumed])
    assert result.resumed_from.endswith("epoch_002.pt") and result.epochs_run == 2
    # The epoch restarts from its beginning: same steps, same learning rates, same losses.
    assert [r[:2] for r in resumed.rows] == [r[:2] for r in full_rows[4:]]
    assert [r[2] for r in resumed.rows] == [r[2] for r in full_rows[4:]]
    a, b = _weights(str(ref / "last.pt")), _weights(str(tmp_path / "b" / "last.pt"))
    assert _max_abs_diff(a, b) == 0.0
    ea = ckpt.load_checkpoint(str(ref / "last.pt"))
    eb = ckpt.load_checkpoint(str(tmp_path / "b" / "last.pt"))
    assert ea["ema"]["updates"] == eb["ema"]["updates"] == 8
    assert ea["best_map50"] == eb["best_map50"] and len(eb["history"]) == 4
    assert eb["run"] == crashed_run != ea["run"]   # the resumed run keeps its identity


def test_resume_path_continues_that_files_run(tmp_path, one_epoch):
    longer = load_config(_one_epoch_here(one_epoch, tmp_path / "logs", **{"train.epochs": 2}))
    res = fit(longer, resume=str(tmp_path / "logs" / "epoch_001.pt"))
    assert res.resumed_from.endswith("epoch_001.pt") and res.epochs_run == 1
    run = ckpt.load_checkpoint(str(tmp_path / "logs" / "epoch_001.pt"))["run"]
    assert ckpt.read_sidecar(str(tmp_path / "logs" / "epoch_002.pt")).run == run
    assert res.out_dir == str(tmp_path / "logs")


def test_resume_none_in_a_folder_of_another_run_is_refused_naming_both_runs(tmp_path, one_epoch):
    path = _one_epoch_here(one_epoch, tmp_path / "logs")
    old = ckpt.read_sidecar(str(tmp_path / "logs" / "epoch_001.pt")).run
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "logs").iterdir()}
    res = CliRunner().invoke(cli, ["train", "-c", path, "--resume", "none"])
    assert res.exit_code == 1
    line = res.output.strip().splitlines()[-1]
    assert line.startswith(f"Error: {tmp_path / 'logs'} already holds checkpoints of run {old} "
                           f"(newest: epoch_001.pt, epoch 1, iteration 2); starting run ")
    new = line.split("starting run ")[1].split()[0]
    assert new != old
    assert line.endswith("there would mix the two runs. Continue the old run with --resume auto, or "
                         "give the new run its own folders: --set train.out_dir=<a new folder> "
                         "--set drive.logs=<a new Drive folder>")
    # Nothing was touched.
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "logs").iterdir()} == before


def test_a_finished_run_resumed_trains_nothing(tmp_path, one_epoch):
    again = fit(load_config(_one_epoch_here(one_epoch, tmp_path / "logs")), resume="auto")
    assert again.epochs_run == 0 and again.final["map50"] == pytest.approx(one_epoch[1]["map50"])


def test_resume_with_another_class_count_is_refused(tmp_path, one_epoch):
    path = _one_epoch_here(one_epoch, tmp_path / "logs")
    res = CliRunner().invoke(cli, ["train", "-c", path, "--set", "data.classes=[circle, square, triangle, star]"])
    assert res.exit_code == 1
    assert "Error: cannot resume from" in res.output
    assert "the config changes the model's shape (num_classes: checkpoint 3, config 4)" in res.output


def test_resume_from_a_missing_path_is_an_error(tiny_config, tmp_path):
    res = CliRunner().invoke(cli, ["train", "-c", tiny_config(), "--resume", str(tmp_path / "nope.pt")])
    assert res.exit_code == 2   # a bad path, said before the data is staged (ux34)
    assert "no such file; use --resume auto or a checkpoint path" in res.output


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_reaches_the_same_weights(tmp_path, uninterrupted):
    """A real SIGKILL in the middle of epoch 3 (of 4), then ``--resume auto`` (in this process:
    the kill is what needs a process of its own)."""
    path = config_like(uninterrupted[0], tmp_path / "killed")
    from _trainer_proc import start_trainer   # (forked with torch imported: 3 s of CPU less)

    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same arithmetic as this process (one thread)
    log = tmp_path / "child.log"
    proc = start_trainer(["-v", "train", "-c", path], env=env, stderr=str(log))
    last = str(tmp_path / "killed" / "last.pt")
    try:
        deadline = time.monotonic() + 120
        while "epoch 3/4 iter 1/2" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the trainer never reached epoch 3"
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.01)   # (one iteration into epoch 3)
        # Epoch saves are written in the background: on a loaded machine none may be on disk
        # yet (then there is nothing to resume from, and nothing to test): the kill waits
        # for the first one.
        deadline = time.monotonic() + 60
        while ckpt.read_sidecar(last) is None:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # Epoch saves are written in the background: the kill may land before epoch 2's is on disk
    # (then last.pt holds epoch 1), or an epoch later on a loaded machine; and between a
    # checkpoint and its sidecar (then last.pt has none, and the newest described checkpoint
    # is where the resume starts).
    found = ckpt.newest(ckpt.list_checkpoints(str(tmp_path / "killed")), any_run=True)
    assert found is not None
    done = found.sidecar.epoch
    assert 1 <= done < 4

    out = CliRunner().invoke(cli, ["-v", "train", "-c", path, "--resume", "auto"])
    assert out.exit_code == 0, out.output[-2000:]
    assert f"resumed from {tmp_path / 'killed'}" in out.output
    at = re.search(r" at epoch (\d+), iteration (\d+) \(run ", out.output)
    assert at is not None, out.output[-2000:]
    epoch, iteration = int(at.group(1)), int(at.group(2))
    assert epoch in (done, done + 1) and iteration == 2 * epoch  # at an epoch's end
    diff = _max_abs_diff(_weights(str(uninterrupted[0] / "logs" / "last.pt")),
                         _weights(str(tmp_path / "killed" / "last.pt")))
    assert diff == 0.0


def test_another_machine_pulls_the_checkpoint_rank0_fetched_from_drive(emulator, drive_env,
                                                                        tmp_path):
    # Multi-machine DDP: rank 0 fetched epoch_004.pt from Drive into its own out_dir; on the
    # other machines the local rank 0 pulls the same bytes (by id, md5-checked) before every
    # rank loads them (tests/test_attack_ddp19.py: when they change meanwhile).
    import hashlib

    from drivestage.remote import open_store
    from trainer.resume import Chosen, ensure_local_checkpoint

    data = os.urandom(300_000)
    emulator.add_file("Models/run/logs/epoch_004.pt", data)
    store, path = open_store("drive:Models/run/logs/epoch_004.pt")
    chosen = Chosen("drive:Models/run/logs/epoch_004.pt", hashlib.md5(data).hexdigest(),
                    len(data), store.resolve(path))
    target = tmp_path / "other-machine" / "logs" / "epoch_004.pt"
    target.parent.mkdir(parents=True)
    got = ensure_local_checkpoint(str(target), chosen)
    assert got == str(target) and target.read_bytes() == data
    # A machine that already has it (rank 0's) makes no request at all.
    emulator.clear_requests()
    ensure_local_checkpoint(str(target), chosen)
    assert emulator.requests == []
