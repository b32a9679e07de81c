"""The reduced chaos run: pull, push and training under random faults and SIGKILLs."""
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
    res = subprocess.run([sys.executable, str(REPO / "bench" / "chaos.py"), "--quick"],
                         capture_output=True, text=True, env=env, timeout=540)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "verified: every staged and mirrored file has the right md5" in res.stdout
    lines = {line.split()[0]: line for line in res.stdout.splitlines() if line.strip()}
    # Each operation was really killed and really hit faults, and still ended "ok".
    for op in ("pull", "push", "train"):
        row = lines[op].split()
        assert row[-1] == "ok", res.stdout
    assert "operations: 3 completed, 0 not completed" in res.stdout
