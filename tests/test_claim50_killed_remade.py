"""claim50: a trainer that lost its lease and made its claim anew, SIGKILLed between that
write and its removal of it (claim49 reasoned "the stale rule cleans it"; no test showed it).

Where the run folder's listing decides (the emulator ignores ``If-Match``), the old trainer
(a process of its own, the trainer's RunLease in it) renews late: its claim, stale by its
date, was taken over and removed meanwhile; its renewal's upload (held by the emulator until
the taker had taken the lease) makes the claim anew, the listing that follows shows the
taker, and the process is killed by an audit hook at the moment its removal of that claim
(a ``DELETE``) is about to leave it: a real SIGKILL, nothing of the trainer replaced.

What is left, and what others do with it: the claim made anew stays (generation 1, the
killed pid), below the taker's (2). The taker holds on; ``trainer status`` names the taker;
a trainer started meanwhile is refused naming the taker. The claim is no one's at once where
the killed process was of this machine (its pid ended), and once stale by Drive's dates
where it was another machine's (aged here by the emulator's store, not a wait); then
``trainer status``, after the taker's run ended, says the killed pid trained last and is
gone, and the next trainer takes the lease at once and removes it. What the taker pushed
is never touched. The real PyDrive2 stack against the emulator; no sleeps."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from _cli import child_env
from _forkcli import PIPE, cli_server
from _lease_race import DEST, claims_on_drive, lease
from _refusal_watch import watching

#: The old trainer: holds the lease (``period`` s), says its claim's id and its pid, waits for
#: a line, then checks the lease once: killed by SIGKILL as the first ``DELETE`` of that check
#: is sent (its removal of the claim its renewal made anew). ``machine``: its claims' machine
#: (another machine's: a tag not this one's), "" for this machine's.
OLD = r"""
import os, signal, sys
machine, local = sys.argv[1], sys.argv[2]
if machine:   # (another machine's claim: its pid is not looked up here)
    import drivestage.temps
    drivestage.temps._tag = (os.getpid(), machine)
from trainer.drive import DriveFolder
from trainer.lease import RunLease

lease = RunLease(DriveFolder("drive:runs/exp", local), period_s=60.0)
lease.acquire()
print(lease._mine.id, os.getpid(), flush=True)
sys.stdin.readline()

def hook(name, args):
    if name == "http.client.send" and isinstance(args[1], (bytes, bytearray)) \
            and bytes(args[1]).startswith(b"DELETE "):
        os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(hook)
lease.check()
print("not killed", flush=True)
"""


def _bytes(emulator, file_id: str) -> bytes:
    with open(emulator.store.blob_path(file_id), "rb") as fh:
        return fh.read()


def _status(tmp_path) -> dict:
    """``trainer status --json``'s ``lease`` (:func:`trainer.status.lease`), one minute."""
    from trainer.drive import DriveFolder
    from trainer.status import lease as status_lease

    held = status_lease(DriveFolder(DEST, str(tmp_path / "status")), 1.0)
    assert held is not None
    return held


@pytest.mark.parametrize("machine", ["this", "another"])
def test_a_trainer_killed_before_it_removes_the_claim_it_made_anew(
        machine, drive_env, emulator, tmp_path):
    emulator.ignores_if_match = True   # (the listing decides)
    proc = cli_server().popen(["" if machine == "this" else "0badf00d", str(tmp_path / "old")],
                              script=OLD, env=child_env(emulator), stdin=PIPE, stdout=PIPE,
                              stderr=PIPE)
    try:
        first, pid = proc.stdout.readline().split()
        first, pid = first.decode(), int(pid)
        assert pid == proc.pid
        # (Silent an hour by Drive's dates: stale to the taker; its renewal's upload held.)
        emulator.store.update(first, modified=time.time() - 3600)
        emulator.faults.latency(60, path=f"^/upload/.*{first}", times=1)
        proc.stdin.write(b"check\n")
        proc.stdin.flush()
        assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 30)[0]
        taker = lease(tmp_path, "taker", period=60.0)
        taker.acquire()   # (the old claim stale: taken over, and removed)
        assert taker.generation == 2 and taker._mine is not None
        store = taker.drive.store_at()[0]
        (tmp_path / "epoch_001.pt").write_bytes(b"the taker's checkpoint")
        pushed = store.upload(str(tmp_path / "epoch_001.pt"), taker._folder, "epoch_001.pt")
    finally:
        emulator.faults.hurry()   # (the renewal lands: 404, its claim made anew)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, out, err.decode()[-2000:])
    folder = taker._folder.id
    # Left: the claim made anew, the killed process's, generation 1; and the taker's.
    left = [f for f in emulator.store.children(folder) if f["title"].startswith(
        "trainer-lease-") and not f["trashed"] and f["id"] not in (first, taker._mine.id)]
    assert len(left) == 1 and left[0]["title"] != taker.name
    orphan = json.loads(_bytes(emulator, left[0]["id"]))
    assert (orphan["pid"], orphan["generation"]) == (pid, 1)
    assert sorted(claims_on_drive(emulator)) == sorted([left[0]["title"], taker.name])

    # The holder goes on: its check (a renewal) holds; status names it, live.
    taker._write(taker._folder)
    taker.check()
    held = _status(tmp_path)
    assert (held["pid"], held["generation"], held["stale"]) == (os.getpid(), 2, False)
    # A trainer started meanwhile is refused, naming the taker: at the taker's renewal its
    # watch sees (an event: its "is held by" line), not at the watch's end.
    # (Its watch lists every half period: 1.5 s, stale after 4.5 s; the taker renewed just now.)
    taker._write(taker._folder)
    third = lease(tmp_path, "third", period=1.5)
    with watching(third) as (said, refused, watcher):
        assert said.event.wait(30)
        taker._write(taker._folder)
        watcher.join(30)
    assert not watcher.is_alive() and len(refused) == 1, refused
    assert f"pid {os.getpid()} on " in str(refused[0]) and f"pid {pid} " not in str(refused[0])

    # The claim left is no one's: at once where the killed process was of this machine;
    # once stale by Drive's dates where it was another's (aged by the store, not waited for).
    from trainer.lease_claims import Claim

    claim = next(c for c in taker._claims(taker._folder) if c.entry.id == left[0]["id"])
    assert isinstance(claim, Claim) and claim.pid == pid
    assert taker._gone(claim) is (machine == "this")
    if machine == "another":
        emulator.store.update(left[0]["id"], modified=time.time() - taker.stale_s - 5)
        claim = next(c for c in taker._claims(taker._folder) if c.entry.id == left[0]["id"])
        assert taker._gone(claim)
    taker.check()   # (still the holder's)
    taker.release()   # (its run ends: its own claim removed, the left one not its to touch)
    assert claims_on_drive(emulator) == [left[0]["title"]]
    held = _status(tmp_path)   # (the killed pid trained last, and is gone)
    assert (held["pid"], held["generation"], held["stale"]) == (pid, 1, True)

    # The next trainer takes the lease at once (no watch) and removes the claim left.
    after = len(emulator.requests)
    nxt = lease(tmp_path, "next", period=60.0)
    nxt.acquire()
    assert nxt.generation == 2 and claims_on_drive(emulator) == [nxt.name]
    assert [r.method for r in emulator.requests[after:] if r.method == "DELETE"] == ["DELETE"]
    # What the taker pushed is as it pushed it: nothing of the killed trainer's replaced it.
    files = {f["title"]: f for f in emulator.store.children(folder)
             if not f["title"].startswith("trainer-lease-") and not f["trashed"]}
    assert list(files) == ["epoch_001.pt"] and files["epoch_001.pt"]["id"] == pushed.id
    assert _bytes(emulator, pushed.id) == b"the taker's checkpoint"
    nxt.release()
