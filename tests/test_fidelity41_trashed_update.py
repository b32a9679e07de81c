"""fidelity41: a file the user trashes on its own while a push updates it in place.

Drive takes an update of a file in its trash (nothing in the v2 reference refuses it: the
owner still reads, copies and changes a trashed file) and the file stays there: the answer
says ``labels.trashed`` and ``explicitlyTrashed`` true. The push checks the file (one
files.get) before it updates it, and sends a new file when it is trashed then
(``_as_listed``); trashed after that look, while its bytes were on the way, the push counted
it verified and ended 0 with no live copy at the path (trashed40's note). Now the answer is
read: the trashed copy is left in the trash as the user wanted, and the file is sent anew
to its path. Trashing lands at a chosen request through a proxy in front of the emulator."""
from __future__ import annotations

import hashlib

from _cli import run
from _drive_state import live_md5s
from _proxy import Proxy, Reply


def _trash_when_its_update_starts(proxy: Proxy, emulator, file_id: str) -> None:
    """``file_id`` goes to the trash on its own as the session updating it opens."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        emulator.store.set_trashed(file_id, True)
        return Reply(status, headers, [body])
    proxy.on("PUT", rf"^/upload/drive/v2/files/{file_id}\?", mutate, times=1)


def test_a_file_trashed_while_it_is_updated_in_place_is_sent_anew(emulator, penv, proxy,
                                                                   tmp_path):
    old = emulator.add_file("runs/a/f.txt", b"old bytes")
    emulator.add_file("runs/a/g.txt", b"g")
    src = tmp_path / "run"
    src.mkdir()
    (src / "f.txt").write_bytes(b"new bytes, longer")
    (src / "g.txt").write_bytes(b"g")
    _trash_when_its_update_starts(proxy, emulator, old)

    code, _, err = run("push", str(src), "drive:runs/a")

    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {
        "f.txt": [hashlib.md5(b"new bytes, longer").hexdigest()],
        "g.txt": [hashlib.md5(b"g").hexdigest()]}
    trashed = emulator.store.get(old)
    assert trashed["trashed"] and trashed["explicitlyTrashed"]   # left where the user put it
    assert ("drive:runs/a/f.txt was trashed on Drive while this push updated it in place; "
            "left in the trash, sent as a new file") in err, err
