"""clock49: retention on a machine whose clock runs more than a day behind reads the save
times of other machines' checkpoints by Drive's clock.

A sidecar's ``saved`` more than a day ahead of this machine's clock was read as no save time
(``drivestage.sidecar.FUTURE_SLACK_S``): on a machine two days behind, every save time of a
machine with the right clock was, and retention lost its "saved last" rule. Beside a sidecar
claiming a billion epochs, ``prune --keep-last 1`` there deleted the run's real newest
checkpoint (the liar kept as the newest). The bound is now read against the later of this
machine's clock and Drive's as its answers' ``Date`` says it. The CLI in a child process
whose clock runs two days behind (``tests/_clock_shim``); Drive's clock right."""
from __future__ import annotations

import subprocess
import sys

from tests._cli import child_env
from tests._clock import skewed_env
from tests.test_sidecar_saved import _honest, _live, _liar, FOLDER

BEHIND = -2 * 86400.0


def test_prune_two_days_behind_keeps_the_run_saved_last_beside_a_liar(emulator, local_state,
                                                                      tmp_path):
    e1, e2, e3 = _honest(emulator)
    liar = _liar(emulator)
    out = subprocess.run([sys.executable, "-m", "drivestage", "prune", f"drive:{FOLDER}",
                          "--keep-last", "1"], env=skewed_env(BEHIND, child_env(emulator)),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # (the child's clock is off: it says so where it hears Drive's)
    assert "Drive's answers are dated 2880 min ahead of this machine's clock" in out.stderr
    assert _live(emulator) == {**liar, **e3}, out.stdout
    assert "saved last" in out.stdout, out.stdout
