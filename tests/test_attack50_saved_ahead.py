"""attack50 experiment"""
from __future__ import annotations

import time

from drivestage.retention import RetentionPolicy
from drivestage.upload_tree import push
from _checkpoints import save
from test_sidecar_saved import FOLDER, T0, _live

AHEAD = 5 * 86400.0


def test_client_stamp_ahead(emulator, store, env):
    from drivestage.drive import server_clock

    emulator.date_offset = AHEAD
    src = str(env / "logs")
    honest = [save(src, f"epoch_{e:03d}", e, T0 + 60 * e, saved=T0 + 60 * e) for e in (1, 2, 3)]
    liar = save(src, "epoch-002", 10**9, T0 + 90, saved=time.time() + 3 * 86400)
    fid = emulator.add_file(f"{FOLDER}/notes.txt", b"n")
    emulator.store.update(fid, modified=time.time() + AHEAD)
    store.make_folders(FOLDER)
    store.make_folders(FOLDER)
    result = push(src, FOLDER, RetentionPolicy(keep_last=1), store=store)
    print(server_clock._stamped - time.time())
    assert "notes.txt" in _live(emulator)
    assert {k: v for k, v in _live(emulator).items() if k != "notes.txt"} == {**liar, **honest[2]}, [(d.name, d.reason) for d in result.plan]
