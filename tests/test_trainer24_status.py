"""trainer24: ``trainer status`` names the checkpoint ``--resume auto`` goes on from.

Before, status called the run's newest checkpoint on Drive safe, and said nothing more, when
it held NaN weights (a run that had diverged): safe on Drive, but no state to train on; the
user started a machine for it and met ``--resume auto`` passing over it. Now one line names
each checkpoint passed over and why, and one the checkpoint it goes on from; the run folder
is never written, Drive is left as it is, and bytes this machine holds are not downloaded.

Real checkpoints of a real (small) model, the real PyDrive2 stack against the emulator, the
CLI in-process."""
from __future__ import annotations

import json
import os
import re

from click.testing import CliRunner

from drivestage.emulator.log import count_calls
from test_trainer22_hostile import _nan_model, _small_run
from test_trainer23_fallback import RUN, _drive_listing, _save
# (keeplocal25: status compares a checkpoint's layout with the config's network, as --resume
# auto does: the small run's weights are given that network's layout.)
from test_keeplocal25 import FIRST, fitted

SPEC = "drive:Models/t24/logs"


def _status(tiny_config, out_dir, *extra: str):
    from trainer.cli import cli

    cfg = tiny_config(**{"drive.logs": SPEC, "train.out_dir": str(out_dir)})
    return CliRunner().invoke(cli, ["status", "-c", cfg, *extra])


def test_status_names_a_nan_newest_and_the_checkpoint_resume_auto_goes_on_from(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """Drive: epoch_001.pt good, epoch_002.pt (NaN) newest. Status: the first line as before,
    then epoch_002.pt named with why, then epoch_001.pt as where --resume auto goes on; the
    JSON says the same. The fresh machine's run folder is not made; Drive is unchanged."""
    from trainer.drive import DriveFolder

    there = tmp_path / "elsewhere"
    run = _small_run(tiny_config, there)
    _save(run, there, "epoch_001.pt", 1, 1000.0, fitted())
    DriveFolder(SPEC, str(there)).push()
    fresh = tmp_path / "fresh"
    good = _status(tiny_config, fresh)
    assert good.exit_code == 0, good.output
    assert len(good.stdout.splitlines()) == 1      # a good newest: the one line, as before

    _save(run, there, "epoch_002.pt", 2, 2000.0, fitted(_nan_model))
    DriveFolder(SPEC, str(there)).push()
    before = _drive_listing(emulator)
    res = _status(tiny_config, fresh)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert re.fullmatch(rf"{SPEC}/epoch_002\.pt: epoch 2, iteration 4, verified on Drive \d+ s "
                        rf"ago \(run {RUN}\)", lines[0]), lines
    assert lines[1] == (f"{SPEC}/epoch_002.pt is no state to train on (its model weights hold "
                        f"NaN or infinite values (1 tensor, e.g. {FIRST}): the run had "
                        f"diverged when it was saved): --resume auto passes over it")
    assert re.fullmatch(rf"--resume auto goes on from {SPEC}/epoch_001\.pt: epoch 1, "
                        rf"iteration 2, verified on Drive \d+ s ago", lines[2]), lines
    assert len(lines) == 3 and not res.stderr
    data = json.loads(_status(tiny_config, fresh, "--json").stdout)
    assert data["name"] == "epoch_002.pt" and data["resume_from"] == f"{SPEC}/epoch_001.pt"
    assert [p["where"] for p in data["passed_over"]] == [f"{SPEC}/epoch_002.pt"]
    assert data["passed_over"][0]["why"].startswith("its model weights hold NaN")
    assert not fresh.exists()
    assert _drive_listing(emulator) == before


def test_status_reads_the_bytes_this_machine_holds_instead_of_downloading(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """On the training machine the run folder holds Drive's bytes: status hashes them there
    and downloads nothing (one listing and the sidecars' reads are all it asks of Drive)."""
    from trainer.drive import DriveFolder

    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    _save(run, logs, "epoch_001.pt", 1, 1000.0, fitted())
    _save(run, logs, "epoch_002.pt", 2, 2000.0, fitted(_nan_model))
    DriveFolder(SPEC, str(logs)).push()
    emulator.clear_requests()
    res = _status(tiny_config, logs)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[2].startswith(f"--resume auto goes on from {SPEC}/epoch_001.pt")
    downloads = [r.bytes_out for r in emulator.requests if r.kind == "media.download"]
    assert downloads and max(downloads) < 4096 < os.path.getsize(logs / "epoch_001.pt"), downloads
    assert count_calls(emulator.requests, "files.list") >= 1


def test_status_when_no_state_on_drive_can_be_trained_on_says_auto_refuses(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """The run's only checkpoint is bad: status says so and that --resume auto refuses (exit
    0: the checkpoint is safe on Drive all the same)."""
    from trainer.drive import DriveFolder

    there = tmp_path / "elsewhere"
    run = _small_run(tiny_config, there)
    _save(run, there, "epoch_001.pt", 1, 1000.0, fitted(_nan_model))
    DriveFolder(SPEC, str(there)).push()
    res = _status(tiny_config, tmp_path / "fresh")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[1].startswith(f"{SPEC}/epoch_001.pt is no state to train on (its model weights")
    assert lines[2] == (f"--resume auto refuses: no checkpoint of run {RUN} on {SPEC} is a state "
                        f"to train on; resume an earlier checkpoint with --resume PATH "
                        f"(drivestage ls {SPEC} lists them, drivestage pull <one> ./weights "
                        f"fetches it), or start a new run in a new train.out_dir")
    # attack52: the JSON says it too (main 8704ac72: "resume_refused": null, a script read
    # nothing refused).
    said = json.loads(_status(tiny_config, tmp_path / "fresh", "--json").stdout)
    assert (said["resume_from"], said["resume_refused"]) == (
        None, lines[2].removeprefix("--resume auto refuses: "))
    assert not os.path.exists(tmp_path / "fresh")
    # lefts52: on the training machine (the run folder holds epoch_001.pt) the refusal is
    # still the last line, after the run folder's (main a02cab15: the run folder's last, so
    # `trainer status | tail -1` read of local files).
    here = _status(tiny_config, there)
    assert here.exit_code == 0, here.output
    assert here.stdout.splitlines()[-2:] == [
        f"{there}: 1 epoch file on this machine (epoch_001.pt); train.keep_local 0: every "
        "one is kept", lines[2]], here.stdout
