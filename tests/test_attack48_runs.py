"""attack48: ``keep_runs`` under clocks that differ. A run's age came from its newest file's
``modified``: for a file still on this machine, its local mtime (this machine's clock); for
one on Drive only, Drive's modifiedDate (Google's clock). On a machine whose clock runs behind
Google's (a VM before NTP, a Colab VM moved) the new run it pushed read older than the run
another machine had pushed up to that much earlier: ``push --keep-runs 1`` called the run being
trained the older one, never sent its checkpoints (``skipped_by_policy``, exit 0) and kept the
old run. A local mtime is now read by Drive's clock (``RemoteStore.clock_shift``: the skew its
answers' ``Date`` shows, past ``server_clock.TOLERANCE``), and, as which clock is wrong is not
known (a proxy may set a ``Date`` of its own), a run is dropped only where it is older by both
readings. The real PyDrive2 stack against the emulator, its whole clock two hours ahead
(``Emulator.clock_offset``)."""
from __future__ import annotations

import os
import time

from drivestage.retention import RetentionPolicy
from tests.test_retention_runs import _names, _save

BEHIND = 2 * 3600.0   # this machine's clock, behind Google's


def _a_pushed_b_begun(env, store):
    """Run A's epochs 48-50 (in ``old``) pushed to Models/logs keeping the last 2; run B's
    first checkpoint saved in ``new``, not pushed: ``new``."""
    from drivestage.upload_tree import push

    old, new = env / "old", env / "new"
    old.mkdir()
    new.mkdir()
    for e in (48, 49, 50):
        _save(str(old), f"epoch_{e:03d}.pt", e, "run-A")
    push(str(old), "Models/logs", RetentionPolicy(keep_last=2), store=store)
    _save(str(new), "epoch_001.pt", 1, "run-B")
    return new


def test_a_new_run_pushed_from_a_machine_whose_clock_is_behind_is_kept_by_keep_runs(
        emulator, store, env):
    """Run A pushed (Drive's dates by Google's clock, two hours ahead of this machine's);
    run B's first checkpoint written here a minute later: ``push --keep-runs 1`` sends B, the
    run being trained (main: B read two hours older than A, its checkpoint was never sent).
    A stays while the two clocks disagree on which run is older; once B's newest is newer by
    both (written two hours later), A goes."""
    from drivestage.upload_tree import push

    emulator.clock_offset = BEHIND
    new = _a_pushed_b_begun(env, store)
    later = time.time() + 60   # (a minute after A's push: past the Date's truncated second)
    for name in ("epoch_001.pt", "epoch_001.json"):
        os.utime(new / name, (later, later))
    result = push(str(new), "Models/logs", RetentionPolicy(keep_last=2, keep_runs=1),
                  store=store)
    assert result.skipped_by_policy == []
    assert sorted(result.uploaded) == ["epoch_001.json", "epoch_001.pt"]
    assert _names(emulator) == ["epoch_001.pt", "epoch_049.pt", "epoch_050.pt"]
    _save(str(new), "epoch_002.pt", 2, "run-B")
    later = time.time() + BEHIND + 60   # (two hours on: newer than A by this clock too)
    for name in ("epoch_002.pt", "epoch_002.json"):
        os.utime(new / name, (later, later))
    result = push(str(new), "Models/logs", RetentionPolicy(keep_last=2, keep_runs=1),
                  store=store)
    assert sorted(result.uploaded) == ["epoch_002.json", "epoch_002.pt"]
    assert _names(emulator) == ["epoch_001.pt", "epoch_002.pt"]


def test_a_run_newer_by_drives_dates_is_kept_under_a_date_hours_ahead(emulator, store, env):
    """A proxy whose ``Date`` runs two hours ahead, Drive's dates right: run A, pushed by
    another machine a minute ago, is newer than run B's checkpoint written here an hour ago.
    ``push --keep-runs 1`` from here keeps A (read by the ``Date``'s clock alone, B's local
    mtime moved two hours on would read newer and A would go) and sends B's newest (older by
    this machine's clock, newer by the ``Date``'s: both stay while the clocks disagree)."""
    from drivestage.upload_tree import push

    new = _a_pushed_b_begun(env, store)
    earlier = time.time() - 3600
    for name in ("epoch_001.pt", "epoch_001.json"):
        os.utime(new / name, (earlier, earlier))
    emulator.date_offset = BEHIND
    try:
        result = push(str(new), "Models/logs", RetentionPolicy(keep_last=2, keep_runs=1),
                      store=store)
    finally:
        emulator.date_offset = 0.0
    assert sorted(result.uploaded) == ["epoch_001.json", "epoch_001.pt"]
    assert _names(emulator) == ["epoch_001.pt", "epoch_049.pt", "epoch_050.pt"]
