"""attacklease36: what the run's lease (trainer.lease) costs a push, as lease36's report says
it: one listing of drive.logs per push (the claims' bodies read once per process, by id and
md5), and the claim written again only when half a period passed; the renewal thread adds one
listing and one small upload per period. Counted on the emulator's request log, the real
PyDrive2 stack; a push of a new pair with the lease against one without, same folder."""
from __future__ import annotations

from collections import Counter

from _lease_pairs import request_kinds, save_pair

DEST = "drive:runs/exp"


def test_a_push_with_the_lease_costs_one_listing_more(drive_env, emulator, tmp_path):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    local = tmp_path / "logs"
    local.mkdir()
    folder = DriveFolder(DEST, str(local))
    save_pair(local, "epoch_001.pt", 1)
    folder.push()   # (the folder made, marked as a run's)

    def pushed(name: str, weight: float) -> Counter:
        save_pair(local, name, weight)
        before = len(emulator.requests)
        folder.push()
        return request_kinds(emulator.requests[before:])

    plain = pushed("epoch_002.pt", 2)
    lease = RunLease(folder, period_s=600.0)   # (no renewal due in the test)
    lease.acquire()
    folder.lease = lease
    try:
        leased = pushed("epoch_003.pt", 3)
        again = pushed("epoch_004.pt", 4)
    finally:
        lease.release()
    want = plain + Counter(list=1)
    assert again == want, (plain, again)
    assert leased == want, (plain, leased)
    assert again == want, (plain, again)
