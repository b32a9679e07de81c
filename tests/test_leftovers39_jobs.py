"""``push --jobs 100000`` (and mirror's) was taken: up to that many upload threads, each
with its own connection to Drive, where Drive's per-user rate limit answers a few dozen
parallel uploads with 403 rateLimitExceeded and each thread holds a connection and a
chunk in flight (leftovers39). The bound is pull's: 1 to 64, a usage error (exit 2) naming
the option before anything is read, as ``--jobs 0`` is. The real CLI, forked."""
from __future__ import annotations

import os

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


@pytest.mark.parametrize("command", ["push", "mirror", "pull"])
def test_jobs_above_64_is_a_usage_error(command, emulator, drive_env, local_state, tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "a.txt").write_text("hi")
    args = {"push": [str(src), "drive:G"], "mirror": [str(src), "drive:G", "--every", "60"],
            "pull": ["drive:G", str(tmp_path / "d")]}[command]
    done = cli_server().run([command, *args, "--jobs", "100000"], env=dict(os.environ),
                            cwd=str(tmp_path), timeout=60, text=True)
    option = "'-j' / '--jobs'" if command == "pull" else "'--jobs' / '-j'"
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"Error: Invalid value for {option}: 100000 is not in the range 1<=x<=64.")
    assert emulator.files() == [] and not (tmp_path / "d").exists()
