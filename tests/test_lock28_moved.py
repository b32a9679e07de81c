"""A folder moved on Drive while a long-lived store (a mirror, a training run's DriveFolder)
pushes into it: the chain of folders above it was read once per store, so its next push took
the locks of the folders it used to sit in, and a push into its new parent (another process,
a mirror of that folder) at the same moment did not wait: both made its new files (lock28).
The chain is read again at each push (My Drive's top, which never moves, once)."""
from __future__ import annotations

from drivestage.drive import connect
from drivestage.upload_tree import push

from _at_once import live_in as _live_in, second_at_the_ids
from _proxy import Proxy
from test_push_safety import _md5, _no_duplicates, _write


def test_a_push_into_a_folder_moved_since_the_store_s_last_push_waits_for_one_above_it(
        emulator, local_state):
    exp = emulator.add_folder("P/exp")
    q = emulator.add_folder("Q")
    mine, theirs = local_state / "exp", local_state / "q"
    _write(str(mine / "results.csv"), b"epoch\n1\n")
    later = {"results.csv": b"epoch\n1\n2\n", "epoch_002.pt": b"w" * 5000,
             "epoch_002.json": b'{"epoch": 2}'}
    with Proxy(emulator.url) as proxy:
        store = connect(api_root=proxy.url, token="test-token")   # the mirror's
        push(str(mine), f"id:{exp}", store=store, jobs=1)
        store.service.files().update(fileId=exp, addParents=q, removeParents=emulator.find(
            "P")["id"], body={}, supportsAllDrives=True).execute()   # moved by the user
        for name, data in later.items():
            _write(str(mine / name), data)
            _write(str(theirs / "exp" / name), data)
        # The push into Q has listed Q and exp (where it now is) and asks for its new files'
        # ids: the long-lived store's push into exp runs now, whole, unless it waits for it.
        with second_at_the_ids(proxy, lambda: push(str(mine), f"id:{exp}", store=store,
                                                   jobs=1)) as said:
            push(str(theirs), "Q", store=connect(api_root=proxy.url, token="test-token"),
                 jobs=1)
    assert _no_duplicates(emulator) == {}
    assert _live_in(emulator, exp) == {k: _md5(v) for k, v in later.items()}
    assert said == [f"another push into drive:id:{q}, which holds drive:id:{exp}, is "
                    "running in this process; waiting for it"]
