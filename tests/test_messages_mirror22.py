"""Messages of ``drivestage mirror`` that docs/troubleshooting.md quotes (mirror22)."""
from __future__ import annotations

import os

from _envs import env_for_children  # noqa: F401  (a fixture)
from _messages import renders, shown
from test_mirror22_grace import _stopped_while


@renders("ran out before the final push")
def test_the_grace_ran_out_before_drive_answered(emulator, env, tmp_path):
    """Drive answers no read at all after the stop (a held GET): the final push never knew
    what it had to send, and says so."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    code, err, took = _stopped_while(
        emulator, src, env, lambda: emulator.faults.latency(60, method="GET"), "--grace", "0.5")
    assert code == 1, err
    line = err.splitlines()[-1]
    assert line == (
        "Error: --grace (0.5 s) ran out before the final push to drive:Models/logs was done; "
        f"it had not compared {src} with drive:Models/logs yet (Drive did not answer): what "
        "changed since the last push may not be there; run the same drivestage mirror "
        "command again to send it"), err
    assert took < 15, took
    shown("ran out before the final push", line)
    assert os.path.exists(src / "epoch_001.pt")
