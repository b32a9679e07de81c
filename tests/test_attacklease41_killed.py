"""attacklease41: a trainer killed (SIGKILL) right after it wrote its lease claim as a
PROPERTY of the run folder (Drive's storage full: room41), before its settle or its first
renewal: the property stays on the folder. The next trainer of this machine on the full
Drive takes the lease at once (the claim's process has ended: no one's), holds by a
property of its own, and removes the one left, so no property of a dead trainer outlives it
(``drivestage dedupe`` reads them: one left would hold a pair for 2 h).
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import logging
import subprocess
import sys

from drivestage.temps import namespace_tag
from test_fullclaim41_lease import _full, _props, _trainer


def test_a_property_left_by_a_killed_trainer_is_taken_over_at_once_and_removed(
        drive_env, emulator, store, tmp_path, fast_retries, monkeypatch, caplog):
    import socket

    from drivestage.drive import server_clock
    from drivestage.store import RemoteEntry
    from trainer.lease import release_all

    _full(emulator, tmp_path, monkeypatch)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()   # (its pid: a process of this machine that has ended, as a SIGKILL leaves)
    folder = emulator.find("runs/exp")["id"]
    now = round(server_clock.now(), 1)
    store.set_public_property(RemoteEntry(folder, "exp", True), "trainer-lease-deaddeaddeaddead",
                              f"1|{now:.1f}|{now:.1f}|{dead.pid}|{namespace_tag()}|0|"
                              f"{socket.gethostname()}")
    try:
        with caplog.at_level(logging.WARNING, logger="trainer.lease"):
            run, _ = _trainer(tmp_path, "run", 4, minutes=1)
        assert not run.lease.pending and run.lease.generation == 2
        assert _props(emulator) == [run.lease.name[:-5]]   # (the dead one's removed)
        [took] = [r.getMessage() for r in caplog.records if "took the run's lease over" in
                  r.getMessage()]
        assert took.startswith(f"drive:runs/exp: took the run's lease over from pid {dead.pid} ")
        assert took.endswith("(its holder is gone)")
    finally:
        release_all()
    assert _props(emulator) == []
