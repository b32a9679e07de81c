"""docs/emulator.md's second worked example (the Drive users have) runs and passes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EMULATOR_MD = Path(__file__).resolve().parent.parent / "docs" / "emulator.md"
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


def test_users_drive_example_runs(tmp_path):
    blocks = [b for b in _FENCE.findall(EMULATOR_MD.read_text(encoding="utf-8"))
              if b.startswith("# test_users_drive.py")]
    assert len(blocks) == 1
    (tmp_path / "test_users_drive.py").write_text(blocks[0], encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVESTAGE_")}
    # The inner run's own --basetemp: by default pytest deletes all but its three newest
    # temporary folders under /tmp/pytest-of-<user>, here the outer run's older ones (a test
    # of 2 s took 27-51 s on a machine that had run the suite before).
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--basetemp", str(tmp_path / "inner"), "test_users_drive.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 passed" in res.stdout
