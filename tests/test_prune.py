"""prune: plan as a table, applied unless --dry-run; never the newest verified, never outside DEST."""
from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from _envs import env_local_retries  # noqa: F401  (the env fixture)
from drivestage.cli import cli
from drivestage.pruning import prune
from drivestage.retention import RetentionPolicy


def _fill(emu, top="Models/logs", metrics=(0.3, 0.9, 0.1, 0.2, 0.4)):
    for epoch, m in enumerate(metrics, start=1):
        emu.add_file(f"{top}/epoch_{epoch:03d}.pt", b"w" * (100 * epoch))
        emu.add_file(f"{top}/epoch_{epoch:03d}.pt.json",
                     json.dumps({"epoch": epoch, "metrics": {"map50": m}}).encode())
    emu.add_file(f"{top}/results.csv", b"csv")
    emu.add_file(f"{top}/sub/epoch_001.pt", b"inside a subfolder: outside the managed folder")
    emu.add_file("Models/epoch_001.pt", b"outside DEST")


def _live(emu):
    return sorted(f["title"] for f in emu.files()
                  if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder"))


def test_prune_deletes_exactly_what_the_policy_says(emulator, store):
    _fill(emulator)
    plan = prune("Models/logs", RetentionPolicy(keep_last=2, keep_best=1, metric="map50"),
                 store=store)
    assert sorted(d.name for d in plan.to_delete) == [
        "epoch_001.pt", "epoch_001.pt.json", "epoch_003.pt", "epoch_003.pt.json"]
    assert _live(emulator) == sorted([
        "epoch_001.pt",                       # Models/epoch_001.pt, outside DEST
        "epoch_001.pt",                       # sub/epoch_001.pt, outside the managed folder
        "epoch_002.pt", "epoch_002.pt.json", "epoch_004.pt", "epoch_004.pt.json",
        "epoch_005.pt", "epoch_005.pt.json", "results.csv"])
    assert not [f for f in emulator.files() if f["labels"]["trashed"]]


def test_dry_run_deletes_nothing(emulator, store):
    _fill(emulator)
    before = _live(emulator)
    plan = prune("Models/logs", RetentionPolicy(keep_last=1), store=store, dry_run=True)
    assert len(plan.to_delete) == 8
    assert _live(emulator) == before


def test_newest_verified_and_protected_survive(emulator, store):
    _fill(emulator)
    emulator.add_file("Models/logs/epoch_006.pt", b"no sidecar yet: not verified")
    plan = prune("Models/logs", RetentionPolicy(keep_last=1), store=store,
                 protect=["epoch_002.pt"])
    kept = sorted(d.name for d in plan if d.keep and d.name.endswith(".pt"))
    assert kept == ["epoch_002.pt", "epoch_005.pt", "epoch_006.pt"]


def test_use_trash(emulator, store):
    _fill(emulator)
    prune("Models/logs", RetentionPolicy(keep_last=4), store=store, use_trash=True)
    assert sorted(f["title"] for f in emulator.files() if f["labels"]["trashed"]) == \
        ["epoch_001.pt", "epoch_001.pt.json"]


def test_cli_prints_the_plan_and_applies_it(emulator, env):
    _fill(emulator)
    result = CliRunner().invoke(cli, ["prune", "drive:Models/logs", "--keep-last", "3"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ACTION", "SIZE", "NAME", "REASON"]
    assert any(line.startswith("delete") and "epoch_001.pt " in line + " " for line in lines)
    assert lines[-1].startswith("4 to delete")
    assert emulator.find("Models/logs/epoch_002.pt") is None
    assert emulator.find("Models/logs/epoch_003.pt") is not None


def test_cli_dry_run(emulator, env):
    _fill(emulator)
    result = CliRunner().invoke(cli, ["prune", "drive:Models/logs", "--keep-last", "1",
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was deleted." in result.stderr
    assert emulator.find("Models/logs/epoch_001.pt") is not None


@pytest.mark.parametrize("args, message", [
    (["--keep-best", "1"], "needs a metric"),
    (["--keep-last", "0"], "--keep-last 0 is invalid"),
    ([], "prune needs a policy"),
    (["--keep-last", "1", "--pattern", "("], "not a valid regular expression"),
])
def test_cli_bad_policy_is_a_usage_error(emulator, env, args, message):
    result = CliRunner().invoke(cli, ["prune", "drive:Models/logs", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_cli_missing_dest(emulator, env):
    result = CliRunner().invoke(cli, ["prune", "drive:No/Such", "--keep-last", "1"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "not found" in result.stderr.lower()


def test_a_sidecar_for_other_bytes_does_not_verify_the_newest(emulator, store):
    """epoch_006.pt was replaced after its sidecar was written: the sidecar names another md5,
    so epoch_005.pt is the newest verified checkpoint and survives keep_last=1."""
    _fill(emulator)
    emulator.add_file("Models/logs/epoch_006.pt", b"new bytes")
    emulator.add_file("Models/logs/epoch_006.json",
                      json.dumps({"epoch": 6, "md5": "0" * 32}).encode())
    plan = prune("Models/logs", RetentionPolicy(keep_last=1), store=store)
    kept = sorted(d.name for d in plan if d.keep and d.kind == "checkpoint")
    assert kept == ["epoch_005.pt", "epoch_006.pt"]


def test_old_autosaves_go_once_a_newer_one_is_verified(emulator, store):
    _fill(emulator, metrics=(0.3, 0.4))
    for step in (100, 200, 300):
        data = f"autosave at {step}".encode()
        emulator.add_file(f"Models/logs/autosave_{step:08d}.pt", data)
        if step < 300:  # 300 is still in flight: no sidecar yet
            emulator.add_file(f"Models/logs/autosave_{step:08d}.json", json.dumps(
                {"epoch": 2, "epoch_iteration": step,
                 "md5": hashlib.md5(data).hexdigest()}).encode())
    plan = prune("Models/logs", RetentionPolicy(keep_last=5), store=store)
    assert sorted(d.name for d in plan.to_delete) == ["autosave_00000100.json",
                                                      "autosave_00000100.pt"]
    assert sorted(n for n in _live(emulator) if n.startswith("autosave")) == [
        "autosave_00000200.json", "autosave_00000200.pt", "autosave_00000300.pt"]


def test_files_merely_named_like_checkpoints_or_autosaves_are_never_pruned(emulator, store):
    """A run folder holds the user's own files too: a plot per epoch, settings and notes whose
    names start like an autosave. The default names (epoch_NNN with a weights suffix,
    autosave_<number>) must not take them for checkpoints."""
    users = ["loss_epoch_001.png", "confusion-epoch-002.csv", "autosave-settings.yaml",
             "autosave_notes.txt", "autosave_0001.png", "autosave_0002.csv",
             # A final newline is not the end of a name ('$' matched before it).
             "epoch_000.pt\n", "autosave_00000001\n"]
    for name in users:
        emulator.add_file(f"Models/logs/{name}", b"the user's own")
    _fill(emulator, metrics=(0.3, 0.4))
    for step in (100, 200):
        data = f"autosave at {step}".encode()
        emulator.add_file(f"Models/logs/autosave_{step:08d}.pt", data)
        emulator.add_file(f"Models/logs/autosave_{step:08d}.json", json.dumps(
            {"epoch": 2, "epoch_iteration": step, "md5": hashlib.md5(data).hexdigest()}).encode())
    plan = prune("Models/logs", RetentionPolicy(keep_last=1), store=store)
    assert sorted(d.name for d in plan.to_delete) == [
        "autosave_00000100.json", "autosave_00000100.pt", "epoch_001.pt", "epoch_001.pt.json"]
    assert set(users) <= set(_live(emulator))
