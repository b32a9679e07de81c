"""A server that answers a push's upload 200 and keeps nothing (attacksync34)."""
from __future__ import annotations

from _cli import run
from _drive_state import live_md5s
from _liar import kept_nothing_of
from _liar import liar_env  # noqa: F401  (fixtures)
from test_attackds29_run_folders import _save


def test_a_sidecar_answered_200_and_not_kept_leaves_the_verified_pair_before_it(
        emulator, proxy, liar_env, tmp_path):
    """``push exp1 drive:runs/exp1 --keep-last 1``: epoch_002.pt went, then its sidecar, which
    the server answered 200 for and did not keep. The plan, made before the uploads, counted
    the new pair verified (its sidecar here) and pruned the epoch_001 pair: Drive held
    epoch_002.pt alone, no verified checkpoint at all, exit 0. What the push sent is read
    with what the plan keeps before a deletion: the sidecar gone, nothing is deleted."""
    run_dir = tmp_path / "exp1"
    run_dir.mkdir()
    _save(str(run_dir), 1)
    code, _, err = run("push", str(run_dir), "drive:runs/exp1", "--keep-last", "1")
    assert code == 0, err
    before = live_md5s(emulator, "runs/exp1")
    _save(str(run_dir), 2)
    mutate, lost = kept_nothing_of(emulator, "epoch_002.json")
    proxy.on("PUT", r"upload_id=", mutate)

    code, _, err = run("push", str(run_dir), "drive:runs/exp1", "--keep-last", "1")

    assert lost and code == 0, err
    warned = [line for line in err.splitlines() if line.startswith("WARNING")]
    assert warned == [
        "WARNING drivestage.pruning: drive:runs/exp1/epoch_002.json, which the plan keeps, was "
        "deleted since it was listed; nothing deleted (the listing lagged behind that change: "
        "run it again in a minute, with a plan made anew)"]
    after = live_md5s(emulator, "runs/exp1")
    assert set(after) == {"epoch_001.pt", "epoch_001.json", "epoch_002.pt"}
    assert {k: after[k] for k in before} == before
