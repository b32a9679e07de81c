"""claim50: a local sidecar dated in the future, where Drive's answers say its clock runs far
ahead (attackint49's finding on clock49's rule, untested).

clock49 reads "in the future" (a sidecar's ``saved`` more than a day ahead: no save time)
against the later of this machine's clock and Drive's as its answers' ``Date`` says it, so a
machine days behind keeps the save times of machines whose clock is right. A ``Date`` alone
far ahead (a proxy's clock: two answers in a row say it, and it is taken) so loosened the
check for every sidecar read here: a local one claiming a billion epochs, dated three days
ahead, was read as saved last, and a push's ``--keep-last 1`` deleted the run's real newest
checkpoint (the liar kept as newest and as saved last). Drive's own stamps on what it holds
(each item's ``modifiedDate``) did not run ahead: the ``Date`` was shown not to be Drive's
clock. Now the later clock is Drive's only as far as its stamps agree (the newest date
Drive stamped on an item read; a client may set a stamp, so no later than the ``Date``).
A Drive whose stamps run ahead too (this machine behind: clock49's case) still keeps the
save times of a machine whose clock is right (tests/test_clock49_saved_behind.py).

The real PyDrive2 stack against the emulator, whose ``Date`` alone runs five days ahead
(``date_offset``): a push of a local run folder."""
from __future__ import annotations

import time

from drivestage.retention import RetentionPolicy
from drivestage.upload_tree import push
from _checkpoints import save
from test_sidecar_saved import FOLDER, T0, _live

AHEAD = 5 * 86400.0


def test_a_local_liar_dated_ahead_is_not_saved_last_where_only_drives_date_runs_ahead(
        emulator, store, env):
    from drivestage.drive import server_clock

    emulator.date_offset = AHEAD
    src = str(env / "logs")
    honest = [save(src, f"epoch_{e:03d}", e, T0 + 60 * e, saved=T0 + 60 * e) for e in (1, 2, 3)]
    liar = save(src, "epoch-002", 10**9, T0 + 90, saved=time.time() + 3 * 86400)
    store.make_folders(FOLDER)
    store.make_folders(FOLDER)   # (two answers say Drive's clock five days ahead: taken)
    assert server_clock.heard_skew() is not None and server_clock.heard_skew() > AHEAD - 120
    result = push(src, FOLDER, RetentionPolicy(keep_last=1), store=store)
    assert _live(emulator) == {**liar, **honest[2]}, [(d.name, d.reason) for d in result.plan]
    why = {d.name: d.reason for d in result.plan}
    assert "saved last" in why["epoch_003.pt"], why
