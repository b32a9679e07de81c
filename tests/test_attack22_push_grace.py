"""attack22push: ``mirror --grace`` running out while the push under way is a period's, begun
before the stop. Its list of what it had not sent said nothing of what changed in SRC after
it began (the checkpoint a trainer wrote right before its SIGTERM): the line named only the
period's files as not sent, or said "every file was sent" while the new one never went."""
from __future__ import annotations

import os
import re

from _mirror_signal import live_files, mirror_signalled


def test_a_grace_run_out_during_a_periods_push_does_not_claim_the_rest_was_sent(
        emulator, local_state, drive_env, tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    (src / "epoch_001.pt").write_bytes(os.urandom(8 * 256 * 1024))
    emulator.faults.throttle(512 * 1024)   # epoch_001.pt: 4 s, half a second a chunk
    result = mirror_signalled(
        emulator, src, lambda: (src / "epoch_002.pt").write_bytes(b"the newest checkpoint"),
        "--grace", "0.5")
    assert result.exit_code == 1, result.output
    assert "epoch_002.pt" not in live_files(emulator)
    # results.csv may be named too: on Drive, but not yet verified by the push when the
    # signal came (it is "not sent" until then).
    line = result.stderr.splitlines()[-1]
    assert re.fullmatch(re.escape(
        "Error: --grace (0.5 s) ran out before the final push to drive:Models/logs was done; "
        "it had not begun: the push under way since before the stop had not sent "
        "epoch_001.pt") + "(, results.csv)?" + re.escape(
        f", and what changed in {src} since that push began is not there either; "
        "run the same drivestage mirror command again to send it (a cut upload resumes)"),
        line), result.stderr
