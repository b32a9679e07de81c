"""clock51's rule attacked (attackc51): Drive's clock is bounded by the stamps on the answers
to this process's own writes, taken as Drive's because drivestage sends no date. But an
update in place (a changed log file pushed again) answers with the file's ``createdDate``
as it was: a client's, where another client made the file with its own date (rclone ``-M``
sends a file's birth time). Only the ``modifiedDate`` of an update is Drive's.

The real PyDrive2 stack against the emulator (its ``Date`` alone five days ahead), clock51's
scene: a notes file in the run folder sent by another client with a ``createdDate`` five days
ahead, and this process pushes a changed notes.txt over it (in place), then a local liar
sidecar dated three days ahead and ``--keep-last 1``."""
from __future__ import annotations

import time

from drivestage.retention import RetentionPolicy
from drivestage.upload_tree import push
from _checkpoints import save
from test_clock51_created_ahead import AHEAD, _left, _rclone_m
from test_sidecar_saved import FOLDER, T0


def test_an_update_in_place_of_a_file_a_client_dated_ahead_is_no_stamp_of_drive(
        emulator, store, env):
    """On main 53886d51 epoch_003 (the real newest) was deleted and the liar kept as "saved
    last": the update's answer carried notes.txt's createdDate five days ahead, and
    ``server_clock.wrote`` took it as Drive's clock at the write."""
    src = env / "logs"
    honest = [save(str(src), f"epoch_{e:03d}", e, T0 + 60 * e, saved=T0 + 60 * e)
              for e in (1, 2, 3)]
    _rclone_m(emulator, store, time.time() + AHEAD)
    notes = {f["title"]: f["id"] for f in store.drive.ListFile(
        {"q": "title = 'notes.txt' and trashed = false"}).GetList()}
    (src / "notes.txt").write_text("the run's own notes")
    push(str(src), FOLDER, RetentionPolicy(keep_last=3), store=store)
    again = {f["title"]: f["id"] for f in store.drive.ListFile(
        {"q": "title = 'notes.txt' and trashed = false"}).GetList()}
    assert again == notes   # (updated in place: the client's createdDate kept)
    liar = save(str(src), "epoch-002", 10**9, T0 + 90, saved=time.time() + 3 * 86400)
    result = push(str(src), FOLDER, RetentionPolicy(keep_last=1), store=store)
    assert _left(emulator) == {**liar, **honest[2]}, [(d.name, d.reason) for d in result.plan]
    assert "saved last" in {d.name: d.reason for d in result.plan}["epoch_003.pt"]
