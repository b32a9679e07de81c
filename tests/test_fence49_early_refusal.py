"""fence49: a trainer started while another renews the run's lease is refused at the first
renewal its watch sees (trainer.lease_held.watch: a live claim renewed while watched), not at
the watch's end (the stale bound and a period: 2.5 min more with the default lease). Every
test of the refusal passed with that early refusal removed (lease36_two_trainers, the
messages test: a holder renewing all along is refused by the end of the watch too, with the
same line, only later). Here the holder renews once, when the watch has begun (its "is held
by" line: an event), and the watch's listings after that renewal are counted on the
emulator's request log: one sees the renewal and refuses. Without the early refusal the
watch ran to its end (14 s) and took the lease over, the claim by then unrenewed for this
trainer's stale bound (9 s): the test fails. The real RunLease and PyDrive2 stack against
the emulator."""
from __future__ import annotations

from _refusal_watch import watching

DEST = "drive:runs/exp"


def test_a_renewal_seen_while_watched_refuses_at_once(drive_env, emulator, tmp_path):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    # (The holder's own renewal is the test's: a 60 s period, never stale meanwhile, and no
    # renewal thread whose listings would count with the watch's.)
    holder = RunLease(DriveFolder(DEST, str(tmp_path / "holder")), period_s=60.0)
    holder.acquire()
    second = RunLease(DriveFolder(DEST, str(tmp_path / "second")), period_s=3.0)
    try:
        with watching(second) as (said, refused, watcher):
            assert said.event.wait(30)   # (watching: its first listing showed the live claim)
            holder._write(holder._folder)   # the holder renews
            after = len(emulator.requests)
            watcher.join(30)
    finally:
        holder.release()
    assert not watcher.is_alive() and len(refused) == 1, refused
    assert "holds its lease (last renewed " in str(refused[0]), refused
    # (The watch lists nothing else, and the holder nothing but its release's removal.)
    listings = [r for r in emulator.requests[after:] if r.kind == "files.list"]
    # One listing sees the renewal (two where one was on its way as it landed); the watch's
    # end is eight more listings away (every 1.5 s until 14 s).
    assert 1 <= len(listings) <= 2, [(r.kind, r.query) for r in emulator.requests[after:]]
