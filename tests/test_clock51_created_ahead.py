"""clock51: Drive's clock bounded by its stamps, where a client set an item's ``createdDate``.

attack50 left Drive's clock as its answers' ``Date`` says it bounded by the newest
``createdDate`` of the items read (Drive's own stamp by default: ``modifiedDate`` is a
client's mtime for rclone and Drive for desktop). But a client may set ``createdDate`` too
when it makes a file (rclone ``--metadata``/``-M`` sends a file's birth time, GAM
``createdtime``): one such file anywhere the store lists, made by a machine whose clock runs
five days ahead, with a proxy's ``Date`` five days ahead, made a local sidecar dated three
days ahead "saved last" again, and ``push --keep-last 1`` deleted the run's real newest
checkpoint.

Now the stamps on the answers to this process's own writes (a file it uploaded, a folder it
made: drivestage sends no date, so Drive stamped both from its clock) bound Drive's clock
where there are any; the items' ``createdDate`` only where this process wrote nothing yet.
A push reads its local sidecars before it sends a byte, so a one-shot ``push`` or ``prune``
into a folder that is there still reads by the items' stamps (the strict xfail below: by
this machine's clock instead, clock49's machine days behind lost its "saved last" rule
there, in every one-shot prune).

The real PyDrive2 stack against the emulator, whose ``Date`` alone runs five days ahead
(``date_offset``) and whose run folder holds a notes file another client made with a
``createdDate`` five days ahead (sent in its insert, as rclone ``-M`` does)."""
from __future__ import annotations

import time

import pytest

from drivestage.retention import RetentionPolicy
from drivestage.upload_tree import push
from _checkpoints import save
from _cli import run
from test_sidecar_saved import FOLDER, T0, _live, _put

AHEAD = 5 * 86400.0


def _rclone_m(emulator, store, when: float) -> None:
    """A file another client sends into the run folder with its own ``createdDate`` (rclone
    ``-M``'s btime), five days ahead; then two answers say Drive's clock is as far ahead."""
    emulator.date_offset = AHEAD
    folder = store.make_folders(FOLDER)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(when))
    f = store.drive.CreateFile({"title": "notes.txt", "parents": [{"id": folder.id}],
                                "createdDate": stamp, "modifiedDate": stamp})
    f.SetContentString("n")
    f.Upload()
    assert emulator.store.get(f["id"])["created"] > time.time() + AHEAD - 120
    store.make_folders(FOLDER)
    store.make_folders(FOLDER)   # (two answers say Drive's clock five days ahead: taken)


def _left(emulator) -> dict:
    return {k: v for k, v in _live(emulator).items() if k != "notes.txt"}


def test_a_clients_created_date_ahead_does_not_confirm_a_date_ahead_after_a_write(
        emulator, store, env):
    src = str(env / "logs")
    honest = [save(src, f"epoch_{e:03d}", e, T0 + 60 * e, saved=T0 + 60 * e) for e in (1, 2, 3)]
    push(src, FOLDER, RetentionPolicy(keep_last=3), store=store)   # (this process wrote)
    _rclone_m(emulator, store, time.time() + AHEAD)
    liar = save(src, "epoch-002", 10**9, T0 + 90, saved=time.time() + 3 * 86400)
    result = push(src, FOLDER, RetentionPolicy(keep_last=1), store=store)
    assert _left(emulator) == {**liar, **honest[2]}, [(d.name, d.reason) for d in result.plan]
    assert "saved last" in {d.name: d.reason for d in result.plan}["epoch_003.pt"]


@pytest.mark.xfail(strict=True, reason="clock51: a one-shot push reads its sidecars before "
                   "any write of its own, by the items' createdDate, which a client may set "
                   "(this machine's clock instead costs clock49's prune days behind); fixed "
                   "where drivestage made the folder or its files (their mark: clockmark51), "
                   "not here: the folder and the notes file are another client's")
def test_a_clients_created_date_ahead_in_a_one_shot_push(emulator, store, env):
    emulator.add_folder(FOLDER)
    src = str(env / "logs")
    honest = [save(src, f"epoch_{e:03d}", e, T0 + 60 * e, saved=T0 + 60 * e) for e in (1, 2, 3)]
    liar = save(src, "epoch-002", 10**9, T0 + 90, saved=time.time() + 3 * 86400)
    _rclone_m(emulator, store, time.time() + AHEAD)
    result = push(src, FOLDER, RetentionPolicy(keep_last=1), store=store)
    assert _left(emulator) == {**liar, **honest[2]}, [(d.name, d.reason) for d in result.plan]


def test_two_days_behind_a_process_that_wrote_keeps_the_save_times_of_others(
        emulator, store, drive_env, env, local_state):
    """clock49's machine two days behind (Drive's whole clock ahead), where this process
    wrote before its prune: Drive's clock by its stamps on that write, and the save times
    of machines whose clock is right are kept (the liar is not the one saved last)."""
    emulator.clock_offset = 2 * 86400.0
    honest = [_put(emulator, f"epoch_{e:03d}", e, 2 * 86400 + T0 + 60 * e) for e in (1, 2, 3)]
    liar = _put(emulator, "epoch-002", 10**9, 2 * 86400 + T0 + 90)
    store.make_folders("Other/run")   # (a write of this process: Drive stamps its creation)
    code, out, err = run("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert _live(emulator) == {**liar, **honest[2]}, out
    assert "saved last" in out, out
