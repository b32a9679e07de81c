"""attacklease42: ``drivestage dedupe`` racing a trainer's first claim.

dedupe reads both folders' claims before it moves anything (guards41: a live run's pair is
refused). A trainer that starts at the path just after that read takes the lease in the
oldest (where every push goes), and the newer twin's claim of a run long gone (generation
5) was then moved in beside it: the move dated it now, and its generation, above the new
run's 1, read as a take-over at the run's next check ("pid 4242 on gone-host took the run's
lease over (renewed 0 s ago)"): the run stopped, exit 1. A newer folder's claims go to the
trash now, never into the oldest. The trainer is started from a log handler at dedupe's first
move, in dedupe's thread: after its read, before its moves, every time.
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import json
import logging
import time

from click.testing import CliRunner

from drivestage.cli import cli
from tests.test_guards41_dedupe import _lease, _twins
from tests.test_messages_dedupe import live, put


class _StartAtTheFirstMove(logging.Handler):
    def __init__(self, start) -> None:
        super().__init__(logging.INFO)
        self.start, self.leases = start, []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("moving ") and not self.leases:
            self.leases.append(self.start())


def test_a_run_started_while_dedupe_merges_keeps_its_lease(
        env, drive_env, emulator, store, tmp_path, fast_retries, monkeypatch):
    from trainer.lease import release_all

    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    old, new = _twins(emulator, store)
    body = {"owner": "aaaa", "host": "gone-host", "pid": 4242, "machine": "x", "generation": 5,
            "stale_s": 150.0}
    gone = put(emulator, store, new, "trainer-lease-aaaa.json", json.dumps(body).encode())
    emulator.store.update(gone, modified=time.time() - 3600)
    starts = _StartAtTheFirstMove(lambda: _lease(tmp_path, "drive:runs/exp"))
    log = logging.getLogger("drivestage.dedupe")
    level = log.level
    log.addHandler(starts)
    log.setLevel(logging.INFO)
    try:
        r = CliRunner().invoke(cli, ["dedupe", "drive:runs/exp"])
        assert r.exit_code == 0, r.stderr
        [lease] = starts.leases
        assert lease._folder.id == old and lease.generation == 1
        lease.check()   # (before: LeaseLostError, the gone run's claim of generation 5)
        assert lease.lost is None
        assert set(live(emulator)) == {"runs", "runs/exp", "runs/exp/a.txt", "runs/exp/b.txt",
                                       f"runs/exp/{lease.name}"}
        [rec] = [f for f in emulator.files() if f["id"] == gone]
        assert rec["labels"]["trashed"] and rec["parents"][0]["id"] == new
    finally:
        log.removeHandler(starts)
        log.setLevel(level)
        release_all()
