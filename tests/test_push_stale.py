"""A push from a machine that fell behind never replaces a further-on checkpoint of its run.

Machine B continued the run and pushed ``last.pt`` at epoch 5; machine A (a spot VM whose
disk came back) still holds ``last.pt`` at epoch 4 of the same run. A plain ``drivestage push``
from A must leave B's checkpoint and its sidecar on Drive, and say so. Only when Drive's copy
claims more progress *and* a later save (clamped to when its sidecar reached Drive) is it
further on: a run deliberately resumed from an older checkpoint (a later save) replaces it,
and so does a pushed file beside a sidecar that merely claims more progress (a liar). Another
run's checkpoint is left too, by default (``--force`` replaces it).

Through the real stack against the emulator; what is asserted is the exact set of files on
Drive (name -> md5s), the exit code and the warning."""
from __future__ import annotations

import os
import time

import pytest

from _checkpoints import RUN, md5, save, sidecar_json
from _cli import run
from _drive_state import live_md5s

FOLDER = "Models/logs"
T0 = time.time() - 3600


@pytest.fixture(autouse=True)
def _fast(fast_retries, drive_env, local_state):
    """Backoffs of a millisecond; the emulator as Drive."""


def _on_drive(emu, stem: str, epoch: int, saved: float, arrived: float, run_id: str = RUN) -> dict:
    """B's checkpoint and sidecar on Drive; the sidecar reached Drive at ``arrived``."""
    data = os.urandom(3000)
    side = sidecar_json(epoch, data, run_id, saved)
    emu.add_file(f"{FOLDER}/{stem}.pt", data)
    fid = emu.add_file(f"{FOLDER}/{stem}.json", side)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(arrived)) + ".000Z"
    emu.store.update_meta(fid, {"modifiedDate": stamp}, set_modified=True)
    return {f"{stem}.pt": [md5(data)], f"{stem}.json": [md5(side)]}


def test_a_push_from_a_machine_behind_leaves_the_further_on_checkpoint(emulator, tmp_path):
    theirs = _on_drive(emulator, "last", 5, T0 + 500, T0 + 510)
    src = str(tmp_path / "a")
    save(src, "last", 4, T0 + 400, saved=T0 + 400)
    code, out, err = run("push", src, f"drive:{FOLDER}")
    assert code == 0, err
    assert live_md5s(emulator, FOLDER) == theirs
    assert (f"drive:{FOLDER}/last.pt is further on (epoch 5) than {src}/last.pt (epoch 4) of "
            "the same run; left as it is") in err


def test_a_run_resumed_from_an_older_checkpoint_replaces_it(emulator, tmp_path):
    _on_drive(emulator, "last", 5, T0 + 500, T0 + 510)
    src = str(tmp_path / "a")
    mine = save(src, "last", 4, T0 + 600, saved=T0 + 600)   # saved after Drive's
    code, out, err = run("push", src, f"drive:{FOLDER}")
    assert code == 0, err
    assert live_md5s(emulator, FOLDER) == mine
    assert "further on" not in err


def test_a_liar_on_drive_does_not_block_the_push(emulator, tmp_path):
    _on_drive(emulator, "last", 10**9, T0 + 900 + 86000, T0 + 300)  # its save clamps to T0+300
    src = str(tmp_path / "a")
    mine = save(src, "last", 4, T0 + 400, saved=T0 + 400)
    code, out, err = run("push", src, f"drive:{FOLDER}")
    assert code == 0, err
    assert live_md5s(emulator, FOLDER) == mine


@pytest.mark.parametrize("case", ["format 2 here", "format 2 there"])
def test_without_both_save_times_the_push_replaces_as_before(emulator, tmp_path, case):
    _on_drive(emulator, "last", 5, None if case == "format 2 there" else T0 + 500, T0 + 510)
    src = str(tmp_path / "a")
    mine = save(src, "last", 4, T0 + 400, saved=None if case == "format 2 here" else T0 + 400)
    code, out, err = run("push", src, f"drive:{FOLDER}")
    assert code == 0, err
    assert live_md5s(emulator, FOLDER) == mine


def test_another_runs_checkpoint_is_left_unless_forced(emulator, tmp_path):
    """Not further on, but another run's: left as it is (exit 1, one line); ``--force``
    replaces it as every push did before (tests/test_push_other_runs.py has the rest)."""
    theirs = _on_drive(emulator, "last", 5, T0 + 500, T0 + 510, run_id="other-run")
    src = str(tmp_path / "a")
    mine = save(src, "last", 4, T0 + 400, saved=T0 + 400)
    code, out, err = run("push", src, f"drive:{FOLDER}")
    assert code == 1, err
    assert err.splitlines()[-1] == (
        f"Error: drive:{FOLDER}/last.pt is another run's checkpoint (run other-run, epoch 5), "
        "left as it is; the rest was pushed. Push into another folder, or add --force to "
        "replace it")
    assert live_md5s(emulator, FOLDER) == theirs
    code, out, err = run("push", src, f"drive:{FOLDER}", "--force")
    assert code == 0, err
    assert live_md5s(emulator, FOLDER) == mine
