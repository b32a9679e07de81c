"""attack48: ``push --delete`` run by a machine whose clock is two days ahead, while another
machine's checkpoint is on its way (listed, its sidecar not sent yet). Its age by this clock
is two days, past every day rule (a lone checkpoint's, ``unlisted_sidecars``): it must stay.
It does: ages are measured by the earlier of this machine's clock and Drive's (the ``Date``
of its answers), and where no ``Date`` comes (a proxy strips it) the first-seen mark this
machine writes must itself be a day old by its own clock. A regression test (passes on
main): the CLI in a child process whose clock runs two days ahead (``tests/_clock_shim``)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from _checkpoints import md5
from _drive_state import live_md5s
from _envs import env  # noqa: F401  (a fixture)
from tests._cli import child_env
from tests._clock import skewed_env
from tests.test_pushgap47_lone_age import _pushed

AHEAD = 2 * 86400.0


def _push_delete(emulator, src) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-m", "drivestage", "push", str(src), "drive:runs/a",
                          "--delete"], env=skewed_env(AHEAD, child_env(emulator)),
                         capture_output=True, text=True, timeout=120)
    return out.returncode, out.stderr


@pytest.mark.parametrize("dated", [True, False], ids=["date", "no-date"])
def test_a_clock_two_days_ahead_spares_a_checkpoint_whose_sidecar_is_on_its_way(
        emulator, env, tmp_path, dated):
    src, pair = _pushed(tmp_path)
    six = os.urandom(3000)
    emulator.add_file("runs/a/epoch_006.pt", six)   # another machine's, its sidecar to come
    emulator.send_date = dated
    for _ in range(1 if dated else 2):   # (no Date: the second pass reads the first's mark)
        code, err = _push_delete(emulator, src)
        assert code == 0, err
        assert live_md5s(emulator, "runs/a") == {**pair, "epoch_006.pt": [md5(six)]}, err
        # (the child's clock is off: it says so where it hears Drive's)
        assert ("Drive's answers are dated 2880 min behind this machine's clock" in err) \
            == dated, err
