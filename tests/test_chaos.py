"""The reduced chaos run: pull, push and training under random faults and SIGKILLs, clients
against a hostile server, and two pulls and two pushes at once."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_chaos_run_loses_nothing():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVESTAGE_")}
    # --fork-server: each drivestage run forked with its imports done (tests/_forkcli.py),
    # each trainer run with torch imported (tests/_trainer_proc.py): the run's fresh
    # interpreters were a good part of its time.
    res = subprocess.run([sys.executable, str(REPO / "bench" / "chaos.py"), "--quick",
                          "--fork-server"],
                         capture_output=True, text=True, env=env, timeout=540)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "verified: every staged and mirrored file has the right md5" in res.stdout
    lines = {line.split()[0]: line for line in res.stdout.splitlines() if line.strip()}
    # Each operation was really killed or really hit faults, and still ended "ok"; clients
    # facing a hostile server ended on their own (no hung run).
    header = lines["operation"].split()
    for op in ("pull", "push", "train", "lying-sizes", "trickle", "repeating-pages",
               "stalled-308s", "2-pulls", "2-pushes"):
        row = dict(zip(header, lines[op].split()))
        assert row["result"] == "ok" and row["hung"] == "0" and row["lost(B)"] == "0", res.stdout
        if op in ("pull", "push", "train"):
            assert int(row["kills"]) > 0, res.stdout
        if op in ("lying-sizes", "trickle", "repeating-pages", "stalled-308s"):
            assert int(row["faults"]) > 0, res.stdout
    assert ("operations: 9 completed, 0 not completed" in res.stdout
            and "bytes lost: 0" in res.stdout), res.stdout
