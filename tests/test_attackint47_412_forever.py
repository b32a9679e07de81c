"""attackint47: a server that refuses every conditional write of the run folder (412), the
folder unchanged (trainer.lease_cas.take, lease47).

A proxy that rewrites etags (one compressing answers appends ``-gzip`` to each: the etag a
client reads is never the one the server compares), or a server whose ``If-Match`` is
broken, answers each swap of the arbiter 412 while a read right after shows the very etag
named. lease47's take read that as four changes by others in a row and failed the start
with "changed on Drive at each of 4 tries": the run trained without its lease, tried
again at each commit of each push (each try a claim, a listing, 4 reads, 4 patches and a
removal), never held it, and every push stopped at its first update or removal: no trainer
ever held the run (its old checkpoints never pruned). Now such a refusal is one WARNING
line and the listing decides, as for a folder whose property Drive refuses (a second
trainer is refused by the listing's rules, as before lease47: tests/test_lease36_*)."""
from __future__ import annotations

import logging

DEST = "drive:runs/exp"


def _lease(tmp_path, name: str):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    return RunLease(DriveFolder(DEST, str(tmp_path / name)), period_s=3.0)


def _patches(emulator, folder: str) -> list[int]:
    return [r.status for r in emulator.requests
            if r.method == "PATCH" and f"/files/{folder}" in r.path]


def test_a_folder_whose_every_conditional_write_is_refused_is_held_by_the_listing(
        drive_env, emulator, tmp_path, caplog):
    emulator.add_folder("runs/exp")
    folder = emulator.find("runs/exp")["id"]
    emulator.faults.inject("PATCH", rf"/files/{folder}\?", status=412, reason="conditionNotMet",
                           times=None)
    a = _lease(tmp_path, "a")
    caplog.set_level(logging.WARNING, logger="trainer.lease")
    try:
        a.acquire()   # (556f8e4f: RemoteChangedError, "changed on Drive at each of 4 tries")
        # (lease49's probe before the claim, refused as Drive does; then one refusal of
        # the swap tells: no four)
        assert _patches(emulator, folder) == [412, 412]
        [line] = [r.getMessage() for r in caplog.records if "trainer-lease" in r.getMessage()]
        assert line.startswith("drive:runs/exp: the run's lease is decided by the folder's "
                               "listing only"), line
        assert "refused a write naming the folder's etag as just read (412), the folder " \
               "unchanged" in line, line
        a._written_at -= a.period_s   # (its renewal due: no swap tried, nothing refused)
        a.check()
        assert a.lost is None and _patches(emulator, folder) == [412, 412]
    finally:
        a.release()


def test_a_swap_whose_answer_was_lost_is_held_after_its_retrys_412(drive_env, emulator, tmp_path):
    """The swap landed, its answer lost (the connection reset): the retry names the etag it
    replaced, 412; the read after shows the folder changed (by this swap) and naming this
    claim: swapped again, held, the arbiter naming it. (A pin: passes on 556f8e4f too.)"""
    emulator.add_folder("runs/exp")
    folder = emulator.find("runs/exp")["id"]
    emulator.faults.drop("PATCH", rf"/files/{folder}\?.*fields=etag", times=1)   # (the swap)
    a = _lease(tmp_path, "a")
    try:
        a.acquire()
        # (the probe before the claim, lease49: refused; the swap, landed, its answer lost;
        # its retry 412; the swap again)
        assert _patches(emulator, folder) == [412, 200, 412, 200]
        value = next(p["value"] for p in emulator.properties_of(folder)
                     if p["key"] == "trainer-lease")
        assert value == f"1 {a.token} {a._mine.id}"
    finally:
        a.release()
