"""attack50: claim50's "Drive's clock only as far as its stamps agree", where a stamp is a
client's.

claim50 bounds Drive's clock as its answers' ``Date`` says it by the newest date Drive
stamped on an item read (``modifiedDate`` or ``createdDate``), so that a proxy's ``Date``
alone days ahead cannot make a local sidecar dated ahead "saved last". But
``modifiedDate`` is a client's word by default for the common clients (rclone and Drive for
desktop keep a file's local modification time; any editor may ``setModifiedDate``): one file
anywhere DriveStore lists, sent from a machine whose clock ran ahead (or with a future
mtime), supplies the "agreeing" stamp, and the liar wins again: ``push --keep-last 1``
deletes the run's real newest checkpoint.

The real PyDrive2 stack against the emulator, whose ``Date`` alone runs five days ahead
(``date_offset``, claim50's case) and whose run folder holds a notes file another client
dated five days ahead. Drive's clock is bounded by the items' ``createdDate`` only (the
lead's call on attack50's strict xfail: an honest sidecar on a machine days behind whose
folder shows only files rewritten in place then reads as "in the future" and loses its save
time's protection; a liar winning deleted the real newest checkpoint)."""
from __future__ import annotations

import time

from drivestage.retention import RetentionPolicy
from drivestage.upload_tree import push
from _checkpoints import save
from test_sidecar_saved import FOLDER, T0, _live

AHEAD = 5 * 86400.0


def test_a_clients_stamp_ahead_does_not_confirm_a_date_ahead(emulator, store, env):
    emulator.date_offset = AHEAD
    src = str(env / "logs")
    honest = [save(src, f"epoch_{e:03d}", e, T0 + 60 * e, saved=T0 + 60 * e) for e in (1, 2, 3)]
    liar = save(src, "epoch-002", 10**9, T0 + 90, saved=time.time() + 3 * 86400)
    # Another client's file in the run folder, dated by a clock five days ahead (as rclone
    # sends a file's mtime as its modifiedDate).
    notes = emulator.add_file(f"{FOLDER}/notes.txt", b"n")
    emulator.store.update(notes, modified=time.time() + AHEAD)
    store.make_folders(FOLDER)
    store.make_folders(FOLDER)   # (two answers say Drive's clock five days ahead: taken)
    result = push(src, FOLDER, RetentionPolicy(keep_last=1), store=store)
    left = {k: v for k, v in _live(emulator).items() if k != "notes.txt"}
    assert left == {**liar, **honest[2]}, [(d.name, d.reason) for d in result.plan]
