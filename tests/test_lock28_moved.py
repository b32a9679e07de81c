"""A folder moved on Drive while a long-lived store (a mirror, a training run's DriveFolder)
pushes into it: the chain of folders above it was read once per store, so its next push took
the locks of the folders it used to sit in, and a push into its new parent (another process,
a mirror of that folder) at the same moment did not wait: both made its new files (lock28).
The chain is read again at each push (My Drive's top, which never moves, once)."""
from __future__ import annotations

import logging
import threading

from drivestage.drive import connect
from drivestage.upload_tree import push

from _proxy import Proxy, Reply
from test_push27_nested import _live_in, _Waits
from test_push_safety import _md5, _no_duplicates, _write


def test_a_push_into_a_folder_moved_since_the_store_s_last_push_waits_for_one_above_it(
        emulator, local_state):
    exp = emulator.add_folder("P/exp")
    q = emulator.add_folder("Q")
    mine, theirs = local_state / "exp", local_state / "q"
    _write(str(mine / "results.csv"), b"epoch\n1\n")
    later = {"results.csv": b"epoch\n1\n2\n", "epoch_002.pt": b"w" * 5000,
             "epoch_002.json": b'{"epoch": 2}'}
    waited, errors, started = threading.Event(), [], []

    def run_mine() -> None:
        try:
            push(str(mine), f"id:{exp}", store=store, jobs=1)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            waited.set()

    def at_the_ids(status: int, headers: dict, body: bytes) -> Reply:
        # The push into Q has listed Q and exp (where it now is) and asks for its new files'
        # ids: the long-lived store's push into exp runs now, whole, unless it waits for it.
        if not started:
            started.append(threading.Thread(target=run_mine))
            started[0].start()
            assert waited.wait(60)
        return Reply(status, headers, [body])

    handler = _Waits(waited)
    logging.getLogger("drivestage").addHandler(handler)
    try:
        with Proxy(emulator.url) as proxy:
            store = connect(api_root=proxy.url, token="test-token")   # the mirror's
            push(str(mine), f"id:{exp}", store=store, jobs=1)
            store.service.files().update(fileId=exp, addParents=q, removeParents=emulator.find(
                "P")["id"], body={}, supportsAllDrives=True).execute()   # moved by the user
            for name, data in later.items():
                _write(str(mine / name), data)
                _write(str(theirs / "exp" / name), data)
            proxy.on("GET", r"generateIds", at_the_ids)
            push(str(theirs), "Q", store=connect(api_root=proxy.url, token="test-token"),
                 jobs=1)
            assert started
            started[0].join(60)
    finally:
        logging.getLogger("drivestage").removeHandler(handler)
    assert not errors, errors
    assert _no_duplicates(emulator) == {}
    assert _live_in(emulator, exp) == {k: _md5(v) for k, v in later.items()}
    assert handler.said == [f"another push into drive:id:{q}, which holds drive:id:{exp}, is "
                            "running in this process; waiting for it"]
