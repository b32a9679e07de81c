"""walk20: a new user follows the README and docs on the emulator (eval, status, weights on
Drive). Each test is a defect that walk found, driven through the real CLI over HTTP."""
from __future__ import annotations

import os

import pytest
import torch
from click.testing import CliRunner

from _messages import error_line, renders, shown
from trainer.cli import cli
from trainer.model import YoloV4Tiny


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI on the emulator, fast retries."""


def _media_gets(emulator) -> list[str]:
    return [r.path for r in emulator.requests if r.query.get("alt") == "media"]


# ------------------------------------------- weights given as a drive: folder, not a file

def _run_folder_on_drive(emulator) -> None:
    """What `drivestage ls drive:Models/demo/logs` shows after a run: checkpoints and logs."""
    for name in ("epoch_003.pt", "epoch_004.pt", "best.pt", "results.csv"):
        emulator.add_file(f"Models/demo/logs/{name}", os.urandom(4096))


FOLDER_REFUSED = ("drive:Models/demo/logs is a folder on Drive, not a file; name a file in it "
                  "(drive:Models/demo/logs/<name>)")


@renders("is a folder on Drive, not a file; name a file in it")
@pytest.mark.parametrize("command", ["eval", "predict", "export-onnx"])
def test_weights_that_name_a_drive_folder_are_refused_before_a_byte_is_pulled(
        command, emulator, tiny_config, tmp_path):
    """`trainer eval -w drive:Models/demo/logs` (the run folder, not best.pt in it) pulled the
    whole folder, every checkpoint (360 MB in the walk), then said "weights file not found:
    …/weights/logs". Now refused at once, naming the option and how to name a file."""
    _run_folder_on_drive(emulator)
    out = tmp_path / "out"
    args = {"eval": ["eval", "-c", tiny_config(), "-w", "drive:Models/demo/logs"],
            "predict": ["predict", "--weights", "drive:Models/demo/logs", "--source",
                        str(tmp_path), "--out", str(out)],
            "export-onnx": ["export-onnx", "--weights", "drive:Models/demo/logs", "--out",
                            str(out / "m.onnx")]}[command]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    line = error_line(r.stderr)
    shown("is a folder on Drive, not a file; name a file in it", line)
    assert line == f"Error: --weights: {FOLDER_REFUSED}"
    assert _media_gets(emulator) == []


def test_model_weights_that_name_a_drive_folder_are_refused(emulator, tiny_config, local_state):
    _run_folder_on_drive(emulator)
    cfg = tiny_config(**{"model.weights": "drive:Models/demo/logs"})
    r = CliRunner().invoke(cli, ["train", "-c", cfg])
    assert r.exit_code == 2, r.output
    assert error_line(r.stderr) == f"Error: model.weights: {FOLDER_REFUSED}"
    assert _media_gets(emulator) == []


def test_weights_that_name_a_drive_file_are_still_pulled(emulator, tiny_config, tmp_path):
    """The refusal is for folders only: best.pt in that folder is pulled and evaluated."""
    names = [n.strip() for n in open(_classes_file(tiny_config())) if n.strip()]
    model = YoloV4Tiny(len(names), input_size=64)
    torch.save({"model": model.state_dict(), "class_names": names,
                "config": {"model": {"input_size": 64}}}, tmp_path / "best.pt")
    emulator.add_file("Models/demo/logs/best.pt", str(tmp_path / "best.pt"))
    r = CliRunner().invoke(cli, ["eval", "-c", tiny_config(), "-w",
                                 "drive:Models/demo/logs/best.pt", "--json"])
    assert r.exit_code == 0, r.output


def _classes_file(config: str) -> str:
    import yaml

    return yaml.safe_load(open(config))["data"]["classes"]


# ---------------------------------------------------- eval's errors name the option typed

def test_eval_weights_missing_locally_names_the_option(tiny_config, tmp_path):
    """`trainer eval -w logs/nothere.pt` said "model.weights: file not found": the user
    typed -w; model.weights is not what to fix."""
    missing = tmp_path / "logs" / "nothere.pt"
    r = CliRunner().invoke(cli, ["eval", "-c", tiny_config(), "-w", str(missing)])
    assert r.exit_code == 2, r.output
    assert error_line(r.stderr) == f"Error: --weights: file not found: {missing}"


def test_eval_weights_missing_on_drive_names_the_option(emulator, tiny_config):
    emulator.add_folder("Models/demo/logs")
    r = CliRunner().invoke(cli, ["eval", "-c", tiny_config(), "-w",
                                 "drive:Models/demo/logs/epoch_001.pt"])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (
        "Error: --weights: drive:Models/demo/logs/epoch_001.pt not found (no item named "
        "'epoch_001.pt' in drive:Models/demo/logs; names are case-sensitive)")


# ------------------------------------------------------------- export-onnx of a backbone

def test_export_of_a_backbone_only_file_says_exporting(tmp_path):
    """export-onnx refused a backbone with "predicting needs trained weights"."""
    model = YoloV4Tiny(3, input_size=64)
    torch.save({k: v for k, v in model.state_dict().items() if k.startswith("backbone.")},
               tmp_path / "backbone.pth")
    r = CliRunner().invoke(cli, ["export-onnx", "--weights", str(tmp_path / "backbone.pth"),
                                 "--out", str(tmp_path / "m.onnx")])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (f"Error: {tmp_path / 'backbone.pth'} has no detection heads "
                                    "(a backbone-only file?); exporting needs trained weights")


# ------------------------------------------------------- trainer status on a missing folder

@renders("not found (…); a run makes it at its first save: check drive.logs")
def test_status_of_a_drive_logs_that_does_not_exist_says_so(emulator, tiny_config):
    """A typo in drive.logs (`logs` -> `log`) said "no verified checkpoint on … yet", as if
    the run had not saved yet: the user waits for a save that goes elsewhere."""
    emulator.add_folder("Models/demo/logs")
    cfg = tiny_config(**{"drive.logs": "drive:Models/demo/log"})
    r = CliRunner().invoke(cli, ["status", "-c", cfg])
    assert r.exit_code == 1, r.output
    line = error_line(r.stderr)
    shown("not found (…); a run makes it at its first save: check drive.logs", line)
    assert line == ("Error: drive.logs drive:Models/demo/log not found (no item named 'log' in "
                    "drive:Models/demo; names are case-sensitive); a run makes it at its first "
                    "save: check drive.logs")


def test_status_of_an_empty_drive_logs_says_not_yet(emulator, tiny_config):
    emulator.add_folder("Models/demo/logs")
    cfg = tiny_config(**{"drive.logs": "drive:Models/demo/logs"})
    r = CliRunner().invoke(cli, ["status", "-c", cfg])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == "Error: no verified checkpoint on drive:Models/demo/logs yet"


# ------------------------------------------- a --metric that no sidecar has, but one close

def _run_with_metrics(src, maps: list[float]) -> None:
    import hashlib
    import json

    os.makedirs(src, exist_ok=True)
    for epoch, value in enumerate(maps, 1):
        data = os.urandom(2000)
        side = {"format": 2, "epoch": epoch, "epoch_iteration": 0, "run": "20261204-061922-a324",
                "md5": hashlib.md5(data).hexdigest(), "size": len(data),
                "metrics": {"map50": value, "val_loss": 1.0 / epoch}}
        (src / f"epoch_{epoch:03d}.pt").write_bytes(data)
        (src / f"epoch_{epoch:03d}.json").write_text(json.dumps(side))


def _drivestage(*args: str):
    from drivestage.cli import cli as ds_cli

    return CliRunner().invoke(ds_cli, list(args))


@renders("no checkpoint's sidecar has the metric")
@pytest.mark.parametrize("typed", ["mAP50", "map_50", "MAP50"])
def test_a_metric_typo_is_refused_before_the_best_is_pruned(typed, emulator, tmp_path):
    """`prune --keep-best 1 --metric mAP50` (the trainer writes map50) ranked no checkpoint,
    so the best one (epoch 1 here) was deleted permanently, with exit 0 and no word."""
    _run_with_metrics(tmp_path / "logs", [0.9, 0.1, 0.2, 0.3])
    assert _drivestage("push", str(tmp_path / "logs"), "drive:runs/a").exit_code == 0
    before = sorted(f["title"] for f in emulator.files())
    r = _drivestage("prune", "drive:runs/a", "--keep-last", "1", "--keep-best", "1",
                    "--metric", typed)
    assert r.exit_code == 2, r.output
    line = error_line(r.stderr)
    shown("no checkpoint's sidecar has the metric", line)
    assert line == (f"Error: no checkpoint's sidecar has the metric {typed!r}, and they have "
                    "'map50' (metric names are case-sensitive): give --metric map50, or no "
                    "checkpoint is kept as best")
    assert sorted(f["title"] for f in emulator.files()) == before
    ok = _drivestage("prune", "drive:runs/a", "--keep-last", "1", "--keep-best", "1",
                     "--metric", "map50")
    assert ok.exit_code == 0, ok.output
    assert {f["title"] for f in emulator.files() if f["title"].startswith("epoch_")} == {
        "epoch_001.pt", "epoch_001.json", "epoch_004.pt", "epoch_004.json"}


def test_a_metric_no_sidecar_has_yet_is_not_refused(emulator, tmp_path):
    """A metric the checkpoints do not carry at all (early epochs before the first mAP) is
    no typo: the rest of the policy applies, as before."""
    _run_with_metrics(tmp_path / "logs", [0.9, 0.1])
    assert _drivestage("push", str(tmp_path / "logs"), "drive:runs/a").exit_code == 0
    r = _drivestage("prune", "drive:runs/a", "--keep-last", "1", "--keep-best", "1",
                    "--metric", "map", "--dry-run")
    assert r.exit_code == 0, r.output


def test_config_md_gives_each_signal_its_exit_code():
    """docs/config.md said train.grace_seconds applies "on SIGTERM/SIGINT … before exiting
    143"; a Ctrl-C exits 130 (README, cli.md), a hang-up 129."""
    from pathlib import Path

    row = next(line for line in (Path(__file__).parent.parent / "docs" / "config.md")
               .read_text().splitlines() if line.startswith("| `train.grace_seconds`"))
    assert "143, 130, 129" in row and "SIGHUP" in row


# ------------------------------------------------------------- a second Ctrl-C, in a notebook

@renders("a second Ctrl-C: stopped at once, without waiting for the uploads; the newest "
         "checkpoint in … is … (…): run the same command again to train on from it")
def test_a_second_ctrl_c_says_what_is_saved(tiny_config, caplog):
    """The first Ctrl-C's stop names the checkpoint saved and verified; a second one (stop at
    once) ended with "Interrupted." alone: nothing said what was saved, or what to run."""
    import logging
    import signal

    from test_messages_attack18 import _run
    from trainer.config import load_config
    from trainer.state import Position

    run = _run(load_config(tiny_config()))
    try:
        run.state.pos = Position(1, 2, 0)
        run.checkpointer.on_fit_epoch_end(run, run.state.pos, {"epoch": 1})
        assert run.writer.wait(run.checkpointer._epoch_job)   # epoch_001.pt written
        run.stop.request(signal.SIGINT)
        with caplog.at_level(logging.WARNING, logger="trainer"):
            run.checkpointer.on_interrupt(run, KeyboardInterrupt())
    finally:
        run.writer.close()
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("trainer"))
    shown("a second Ctrl-C: stopped at once, without waiting for the uploads; the newest "
          "checkpoint in … is … (…): run the same command again to train on from it", text)


def test_status_names_drive_logs_when_a_folder_above_it_is_missing(emulator, tiny_config):
    emulator.add_folder("Models/demo/logs")
    cfg = tiny_config(**{"drive.logs": "drive:Modls/demo/logs"})
    r = CliRunner().invoke(cli, ["status", "-c", cfg])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (
        "Error: drive.logs drive:Modls/demo/logs: drive:Modls not found (no item named 'Modls' "
        "in drive:; names are case-sensitive); a run makes it at its first save: check "
        "drive.logs")


# ----------------------------------------- the trainer's budget error names the config keys

def test_the_trainers_budget_error_names_its_config_keys(emulator, local_state, tiny_config,
                                                         tmp_path):
    """`--set drive.max_bytes=150MB` below what keep_last/keep_best keep: the run ended with
    "raise --max-bytes or keep fewer checkpoints"; the trainer has no --max-bytes. The same
    budget error, with the keys that set it."""
    from trainer.drive import DriveFolder
    from trainer.errors import TrainerError  # noqa: F401  (the CLI prints either kind)
    from drivestage.errors import QuotaExceededError
    from drivestage.retention import RetentionPolicy

    _run_with_metrics(tmp_path / "logs", [0.1, 0.2, 0.3])
    folder = DriveFolder("drive:Models/mb/logs", str(tmp_path / "logs"),
                         RetentionPolicy(keep_last=2, max_bytes=1000))
    with pytest.raises(QuotaExceededError) as caught:
        folder.push()
    text = str(caught.value)
    assert text.endswith("over; raise drive.max_bytes or keep fewer checkpoints "
                         "(drive.keep_last, drive.keep_best)"), text
    assert text.startswith("the retention budget of 1000 B cannot hold what the policy keeps")
    assert [f for f in emulator.files() if f["title"].endswith(".pt")] == []


def test_dedupe_of_a_path_not_there_names_the_missing_part(emulator):
    """`dedupe drive:Models/demo/log` said "drive:Models/demo/log not found (names are
    case-sensitive)"; ls, pull and push name the item and the folder it is missing from."""
    emulator.add_folder("Models/demo/logs")
    r = _drivestage("dedupe", "drive:Models/demo/log")
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == ("Error: drive:Models/demo/log not found (no item named "
                                    "'log' in drive:Models/demo; names are case-sensitive)")
    r = _drivestage("dedupe", "drive:Modls/demo")
    assert error_line(r.stderr) == ("Error: drive:Modls not found (no item named 'Modls' in "
                                    "drive:; names are case-sensitive)")


def test_config_md_says_what_keep_last_0_means():
    """`drive.keep_last: 0` reads as "keep none"; it turns the rule off, and with keep_best 0
    (no max_bytes) nothing is pruned on Drive at all. config.md did not say."""
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "config.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `drive.keep_last`"))
    assert "0: no such rule" in row and "nothing is pruned" in row


@pytest.mark.parametrize("args, line", [
    (["--keep-last", "0"], "Error: --keep-last 0 is invalid; it must be a whole number >= 1"),
    (["--keep-best", "1"], "Error: --keep-best 1 needs a metric to rank by; add --metric NAME "
                           "(e.g. --metric map50 --mode max)"),
    (["--keep-every", "0"], "Error: --keep-every 0 is invalid; it must be a whole number >= 1"),
])
def test_policy_errors_name_the_flags_typed(emulator, args, line):
    """`prune --keep-last 0` said "keep_last=0 is invalid": the Python keyword, not the flag."""
    emulator.add_folder("Models/logs")
    r = _drivestage("prune", "drive:Models/logs", *args)
    assert r.exit_code == 2, r.output
    assert error_line(r.stderr) == line


def test_folders_made_in_one_millisecond_are_dated_in_the_order_made(emulator, store):
    """A warm client makes a folder in under a millisecond: three same-named folders made in
    a row got one createdDate, so "the oldest" (dedupe's, every push's) was the lowest random
    id, not the first made, and tests/test_attack20_dedupe.py failed in half of its runs."""
    root = store.drive.GetAbout()["rootFolderId"]
    made = []
    for _ in range(30):
        f = store.drive.CreateFile({"title": "exp", "parents": [{"id": root}],
                                    "mimeType": "application/vnd.google-apps.folder"})
        f.Upload()
        made.append(f["createdDate"])
    assert made == sorted(set(made)), made


def test_mirror_stops_on_a_usage_error_instead_of_retrying_it_for_ever(emulator, tmp_path):
    """`mirror … --keep-best 1 --metric mAP50` failed every period the same way ("failed
    (will try again)") while nothing at all reached Drive, until stopped by hand. A usage
    error (exit code 2) is the same at every period: the mirror stops at once with it."""
    _run_with_metrics(tmp_path / "logs", [0.9, 0.1])
    assert _drivestage("push", str(tmp_path / "logs"), "drive:runs/a").exit_code == 0
    (tmp_path / "logs" / "new.txt").write_text("not mirrored")
    r = _drivestage("mirror", str(tmp_path / "logs"), "drive:runs/a", "--every", "3600",
                    "--keep-best", "1", "--metric", "mAP50")
    assert r.exit_code == 2, r.output
    assert error_line(r.stderr).startswith("Error: no checkpoint's sidecar has the metric 'mAP50'")
    assert "will try again" not in r.stderr
    assert "new.txt" not in {f["title"] for f in emulator.files()}
