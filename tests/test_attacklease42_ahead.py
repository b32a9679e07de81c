"""attacklease42: a lease claim dated ahead of Drive's clock, its holder gone.

A property claim's times are its writer's reading of Drive's clock (a property has no dates
of its own): a writer that heard no ``Date`` (a proxy that strips it) writes its own clock,
a day ahead on a machine whose clock is. A claim file's date can be set by any client
(``setModifiedDate``). Such a claim reads as renewed a moment ago until that date passes:
every trainer started on the run watched it, saw no renewal, and was still refused ("last
renewed 0 s ago ... wait 4 s after it stopped renewing"), for a day. A claim a starting
trainer watched unchanged past the bound is gone now: taken over and removed, the line says
why. One that changes while watched is renewed: refused, as before.
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import json
import logging
import re
import time

import pytest

from drivestage.drive import server_clock
from drivestage.store import RemoteEntry
from test_fullclaim41_lease import _props, _trainer
from test_lease39_pending_guard import _claims
from tests.test_messages_dedupe import put

DAY = 86400.0
KEY = "trainer-lease-feedfeedfeedfeed"


def _ahead(emulator, store, where: str) -> str:
    """A claim of pid 7 on host ``elsewhere`` (generation 3) dated a day ahead, in the run
    folder: its id as the emulator knows it (the folder's, for a property)."""
    folder = emulator.add_folder("runs/exp")
    then = round(server_clock.now() + DAY, 1)
    if where == "property":
        store.set_public_property(RemoteEntry(folder, "exp", True), KEY,
                                  f"3|{then:.1f}|{then:.1f}|7|x|0|elsewhere")
        return folder
    made = put(emulator, store, folder, f"{KEY}.json", json.dumps(
        {"owner": KEY[-16:], "host": "elsewhere", "pid": 7, "generation": 3}).encode())
    emulator.store.update(made, modified=time.time() + DAY)   # (as setModifiedDate sets it)
    return made


@pytest.mark.parametrize("where", ["property", "file"])
def test_a_claim_dated_ahead_and_never_renewed_is_taken_over_and_removed(
        drive_env, emulator, store, tmp_path, fast_retries, caplog, where):
    from trainer.lease import release_all

    _ahead(emulator, store, where)
    try:
        with caplog.at_level(logging.WARNING, logger="trainer.lease"):
            run, _ = _trainer(tmp_path, "run", 4, minutes=0.01)
        assert not run.lease.pending and run.lease.generation == 4
        [took] = [r.getMessage() for r in caplog.records
                  if "took the run's lease over" in r.getMessage()]
        # (leaselefts43: not "last renewed 0 s ago": the time it was seen unchanged. A day
        # less the seconds since it was dated: 1439.9 past 3 s, as where this test is the
        # first of its worker to import the trainer (torch): attack45)
        assert re.fullmatch(r"drive:runs/exp: took the run's lease over from pid 7 on "
                            r"elsewhere, dated (1440|1439\.\d) min ahead of Drive's clock, so told by its "
                            r"changes: seen unchanged for \d s \(its holder is gone: not "
                            r"renewed while this trainer watched it, its date ahead of "
                            r"Drive's clock\)", took), took
        assert _claims(emulator) == [run.lease.name] and _props(emulator) == []
    finally:
        release_all()
    assert _claims(emulator) == [] and _props(emulator) == []


class _RenewedWhileWatched(logging.Handler):
    """Renews the claim (its date a second later) once, as the watch begins: the holder,
    its clock ahead, is alive."""

    def __init__(self, renew) -> None:
        super().__init__(logging.WARNING)
        self.renew, self.done = renew, False

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting up to" in record.getMessage() and not self.done:
            self.done = True
            self.renew()


@pytest.mark.parametrize("where", ["property", "file"])
def test_a_claim_dated_ahead_that_is_renewed_while_watched_is_refused(
        drive_env, emulator, store, tmp_path, fast_retries, where):
    from trainer.errors import LeaseHeldError
    from trainer.lease import release_all

    made = _ahead(emulator, store, where)
    if where == "property":
        then = round(server_clock.now() + DAY + 1, 1)
        renew = lambda: store.set_public_property(   # noqa: E731
            RemoteEntry(made, "exp", True), KEY, f"3|{then:.1f}|{then:.1f}|7|x|0|elsewhere")
    else:
        renew = lambda: emulator.store.update(made, modified=time.time() + DAY + 1)  # noqa: E731
    watcher = _RenewedWhileWatched(renew)
    logging.getLogger("trainer.lease").addHandler(watcher)
    try:
        with pytest.raises(LeaseHeldError, match="pid 7 on elsewhere holds its lease"):
            _trainer(tmp_path, "run", 4, minutes=0.01)
    finally:
        logging.getLogger("trainer.lease").removeHandler(watcher)
        release_all()
    assert watcher.done
    left = _props(emulator) if where == "property" else _claims(emulator)
    assert left == ([KEY] if where == "property" else [f"{KEY}.json"])
