"""walk20: a new user follows the README and docs on the emulator (eval, status, weights on
Drive). Each test is a defect that walk found, driven through the real CLI over HTTP."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from _messages import error_line
from test_messages_walk20 import FOLDER_REFUSED, _drivestage, _media_gets, _run_folder_on_drive, \
    _run_with_metrics
from trainer.cli import cli
from trainer.model import YoloV4Tiny


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI on the emulator, fast retries."""


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


def test_status_of_an_empty_drive_logs_says_not_yet(emulator, tiny_config):
    emulator.add_folder("Models/demo/logs")
    cfg = tiny_config(**{"drive.logs": "drive:Models/demo/logs"})
    r = CliRunner().invoke(cli, ["status", "-c", cfg])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == "Error: no verified checkpoint on drive:Models/demo/logs yet"


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


def test_status_names_drive_logs_when_a_folder_above_it_is_missing(emulator, tiny_config):
    emulator.add_folder("Models/demo/logs")
    cfg = tiny_config(**{"drive.logs": "drive:Modls/demo/logs"})
    r = CliRunner().invoke(cli, ["status", "-c", cfg])
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (
        "Error: drive.logs drive:Modls/demo/logs: drive:Modls not found (no item named 'Modls' "
        "in drive:; names are case-sensitive); no run has saved there yet: a run makes it at "
        "its first save, or drive.logs names the wrong folder")


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
    assert text.endswith("so nothing was deleted for it (a budget short even then is taken "
                         "for a slip); raise drive.max_bytes to 2.1 KiB or more or keep fewer "
                         "checkpoints (drive.keep_last, drive.keep_best)"), text
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


def test_the_trainers_quota_error_names_its_config_keys(emulator_factory, local_state,
                                                        monkeypatch, tmp_path):
    """A Drive too small for the run: "… or prune with a policy (--keep-last/--max-bytes)",
    flags the trainer does not have. The same error, with its config keys."""
    from drivestage.errors import QuotaExceededError
    from drivestage.retention import RetentionPolicy
    from trainer.drive import DriveFolder

    small = emulator_factory(quota_bytes=5000)
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", small.url)
    _run_with_metrics(tmp_path / "logs", [0.1, 0.2, 0.3])
    folder = DriveFolder("drive:q/run", str(tmp_path / "logs"), RetentionPolicy(keep_last=3))
    with pytest.raises(QuotaExceededError) as caught:
        folder.push()
    text = str(caught.value)
    assert text.startswith("Not enough Drive storage for "), text
    assert text.endswith("Free space on Drive, or keep fewer checkpoints there "
                         "(drive.keep_last, drive.keep_best, drive.max_bytes)."), text
