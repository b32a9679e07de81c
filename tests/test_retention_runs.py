"""Retention never compares checkpoints of different runs (issue 10): sidecars carry ``run``;
every run keeps its own newest (and whatever the policy keeps within it) unless --keep-runs
says how many runs to keep."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from drivestage.errors import PolicyError
from drivestage.retention import Candidate, RetentionPolicy, plan


def _run(run, epochs, start, metrics=None, size=100):
    """A run's checkpoints, saved one second apart from ``start``."""
    metrics = metrics or {}
    return [Candidate(f"{run}_epoch_{e:03d}.pt" if run else f"epoch_{e:03d}.pt", size,
                      start + i, metrics.get(e, {}), e, run=run)
            for i, e in enumerate(epochs)]


def _kept(files, policy, **kw):
    return sorted(d.name for d in plan(files, policy, **kw) if d.keep)


OLD = _run("A", [48, 49, 50], 1000.0, {48: {"map50": 0.9}, 49: {"map50": 0.2}, 50: {"map50": 0.3}})
NEW = _run("B", [1, 2, 3], 5000.0, {1: {"map50": 0.1}, 2: {"map50": 0.05}, 3: {"map50": 0.01}})


def test_keep_last_counts_within_each_run():
    assert _kept(OLD + NEW, RetentionPolicy(keep_last=2)) == [
        "A_epoch_049.pt", "A_epoch_050.pt", "B_epoch_002.pt", "B_epoch_003.pt"]


def test_keep_best_ranks_within_each_run():
    policy = RetentionPolicy(keep_last=1, keep_best=1, metric="map50")
    assert _kept(OLD + NEW, policy) == [
        "A_epoch_048.pt", "A_epoch_050.pt", "B_epoch_001.pt", "B_epoch_003.pt"]


def test_checkpoints_without_a_run_are_a_run_of_their_own():
    legacy = _run(None, [7, 8, 9], 100.0)
    assert _kept(legacy + NEW, RetentionPolicy(keep_last=1)) == ["B_epoch_003.pt",
                                                                 "epoch_009.pt"]


def test_keep_runs_deletes_the_older_runs_entirely():
    decisions = plan(OLD + NEW, RetentionPolicy(keep_last=2, keep_runs=1))
    assert sorted(d.name for d in decisions if d.keep) == ["B_epoch_002.pt", "B_epoch_003.pt"]
    reasons = {d.name: d.reason for d in decisions}
    assert "an older run (A)" in reasons["A_epoch_050.pt"]


def test_keep_runs_never_drops_a_run_for_a_checkpoint_whose_sidecar_is_not_there_yet():
    """The current run's newest checkpoint, mirrored before its sidecar: no run named."""
    fresh = [Candidate("B_epoch_004.pt", 100, 9000.0)]
    kept = _kept(OLD + NEW + fresh, RetentionPolicy(keep_last=1, keep_runs=1))
    assert kept == ["B_epoch_003.pt", "B_epoch_004.pt"]


def test_keep_runs_never_deletes_what_is_protected():
    kept = _kept(OLD + NEW, RetentionPolicy(keep_last=1, keep_runs=1),
                 protect={"A_epoch_050.pt"})
    assert kept == ["A_epoch_050.pt", "B_epoch_003.pt"]


def test_the_budget_takes_from_the_oldest_run_first():
    policy = RetentionPolicy(max_bytes=4 * 100)
    assert _kept(OLD + NEW, policy) == ["A_epoch_050.pt", "B_epoch_001.pt", "B_epoch_002.pt",
                                        "B_epoch_003.pt"]


def test_one_run_plans_exactly_as_before():
    mine = _run("A", [1, 2, 3, 4], 0.0)
    plain = [Candidate(c.name, c.size, c.modified, c.metrics, c.epoch) for c in mine]
    for policy in (RetentionPolicy(keep_last=2), RetentionPolicy(max_bytes=250),
                   RetentionPolicy(keep_every=2, keep_last=1)):
        assert [(d.name, d.keep, d.reason) for d in plan(mine, policy)] == \
            [(d.name, d.keep, d.reason) for d in plan(plain, policy)]


@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_keep_runs_is_validated(value):
    with pytest.raises(PolicyError, match="keep_runs"):
        RetentionPolicy(keep_runs=value)


# --------------------------------------------------------------------------- on a store

def _save(src, name, epoch, run, metric=0.5):
    data = os.urandom(2000)
    with open(os.path.join(src, name), "wb") as fh:
        fh.write(data)
    side = os.path.splitext(name)[0] + ".json"
    with open(os.path.join(src, side), "w") as fh:
        json.dump({"epoch": epoch, "run": run, "metrics": {"map50": metric},
                   "md5": hashlib.md5(data).hexdigest(), "size": len(data)}, fh)


def _names(emu):
    return sorted(f["title"] for f in emu.files()
                  if not f["labels"]["trashed"] and f["title"].endswith(".pt"))


def test_a_new_run_in_an_old_runs_folder_is_uploaded_and_both_keep_their_newest(emulator, store,
                                                                                 env):
    from drivestage.upload_tree import push

    old, new = env / "old", env / "new"
    old.mkdir()
    new.mkdir()
    policy = RetentionPolicy(keep_last=2)
    for e in (48, 49, 50):
        _save(str(old), f"epoch_{e:03d}.pt", e, "run-A")
    push(str(old), "Models/logs", policy, store=store)
    _save(str(new), "epoch_001.pt", 1, "run-B")
    result = push(str(new), "Models/logs", policy, store=store)
    assert result.skipped_by_policy == []
    assert _names(emulator) == ["epoch_001.pt", "epoch_049.pt", "epoch_050.pt"]
    _save(str(new), "epoch_002.pt", 2, "run-B")
    _save(str(new), "epoch_003.pt", 3, "run-B")
    push(str(new), "Models/logs", policy, store=store)
    assert _names(emulator) == ["epoch_002.pt", "epoch_003.pt", "epoch_049.pt", "epoch_050.pt"]


def test_prune_keeps_the_newest_verified_checkpoint_of_every_run(emulator, store, env):
    from drivestage.pruning import prune

    from drivestage.upload_tree import push

    src = env / "logs"
    src.mkdir()
    for e, run in ((5, "run-A"), (6, "run-A"), (1, "run-B"), (2, "run-B")):
        _save(str(src), f"epoch_{e:03d}.pt", e, run)
        push(str(src), "Models/logs", store=store, jobs=1)   # one after the other
    prune("Models/logs", RetentionPolicy(keep_last=1), store=store)
    assert _names(emulator) == ["epoch_002.pt", "epoch_006.pt"]
    prune("Models/logs", RetentionPolicy(keep_last=1, keep_runs=1), store=store)
    assert _names(emulator) == ["epoch_002.pt"]


def test_the_cli_takes_keep_runs(emulator, drive_env, env):
    from click.testing import CliRunner

    from drivestage.cli import cli

    src = env / "logs"
    src.mkdir()
    for e, run in ((5, "run-A"), (6, "run-A"), (1, "run-B")):
        _save(str(src), f"epoch_{e:03d}.pt", e, run)
    result = CliRunner().invoke(cli, ["push", str(src), "drive:Models/logs", "--keep-runs", "1"])
    assert result.exit_code == 0, result.output
    assert _names(emulator) == ["epoch_001.pt"]
    result = CliRunner().invoke(cli, ["prune", "drive:Models/logs", "--keep-runs", "0"])
    assert result.exit_code == 2 and "--keep-runs 0 is invalid" in result.stderr
