"""rerun35's kill (a folder pull -x SIGKILLed after the later archive's merge, before its
stamp), from a local folder (a NAS, a Kaggle input, a FUSE mount): its archives are extracted
where they lie, not copied into DEST. attack36 checks that the later archive's merge journal
counts there too (the journal is keyed by the archive's path): it does (held up; this
fails with the journal rows left out of stamps.siblings_wrote)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

import _cli
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (the fork server, started before the leak check)
from test_attack22_stage import _tree
from test_rerun35_sibling_journal import A1, A2, A_FIRST, B1, B2, B_DECIDES_FIRST, KILL_AT_B_STAMP, _zip


@pytest.mark.parametrize("rerun", ["a first", "b decides first"])
def test_a_rerun_after_a_kill_between_the_later_archives_merge_and_stamp_from_a_local_folder(
        rerun, local_state, tmp_path):
    src = tmp_path / "nas" / "src"
    src.mkdir(parents=True)
    (src / "a.zip").write_bytes(_zip(A1))
    (src / "b.zip").write_bytes(_zip(B1))
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", str(src), str(dest), "-x", "-q")
    assert code == 0, err
    # Both updated: b's new version's merge writes the shared path again (with a.zip
    # updated alone, a leaves the path b's stamp holds and b is not extracted again:
    # exclude37), and the kill comes before b's stamp records it.
    (src / "a.zip").write_bytes(_zip(A2))
    (src / "b.zip").write_bytes(_zip(B2))
    whole = tmp_path / "whole"
    code, _, err = _cli.run("pull", str(src), str(whole), "-x", "-q")
    assert code == 0, err
    want = _tree(whole)
    assert want["src/ds/shared.txt"] == B2["ds/shared.txt"]

    env = dict(os.environ)
    proc = cli_server().run(["pull", str(src), str(dest), "-x", "-q"], script=KILL_AT_B_STAMP,
                            env=env, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]
    script = A_FIRST if rerun == "a first" else B_DECIDES_FIRST
    again = subprocess.run([sys.executable, "-c", script, "pull", str(src), str(dest), "-x",
                            "-q"], env=env, capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr.decode()[-3000:]
    assert b"put back" not in again.stderr, again.stderr.decode()[-3000:]
    assert _tree(dest) == want
    code, _, err = _cli.run("pull", str(src), str(dest), "-x")
    assert code == 0 and "2 files (2 already staged)" in err, err
