"""Create records kept an hour with their md5 (drivestage.create_ids.VERIFIED_AGE) against
what a user does on Drive within that hour: the file deleted (or trashed) and a new one of
that name put there with other bytes, or the file moved to another folder. The next
process's listing lags (shows neither the new file nor the change). Its create names the
recorded id: the user's files are never written, and the file ends up once under the name
with the local bytes, the user's file beside it (for the next push to repair) or moved
away untouched."""
from __future__ import annotations
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

import hashlib

import pytest


def _store(emu):
    from drivestage.drive import connect

    return connect(api_root=emu.url, token="test-token")


def _push(emu, src):
    """A push by a process of its own (a fresh connection)."""
    from drivestage.upload_tree import push

    return push(str(src), (_store(emu), "runs"), jobs=1)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("how", ["deleted", "trashed", "moved"])
def test_a_recorded_file_the_user_replaced_or_moved_is_never_written(emulator, env, how):
    src = env / "run"
    src.mkdir()
    (src / "log.txt").write_bytes(b"epoch 1\n")
    emulator.add_folder("runs")
    other = emulator.add_folder("elsewhere")
    _push(emulator, src)
    (mine,) = [f for f in emulator.files() if f["title"] == "log.txt"]
    emulator.faults.lag_listing(created=5, titles=r"^log")   # (the user's new file)
    store = _store(emulator)
    entry = store.stat(store.resolve("runs/log.txt"))
    if how == "moved":
        store.move(entry, store.resolve("runs"), store.resolve("elsewhere"))
    else:
        store.delete(entry, trash=how == "trashed")
        emulator.add_file("runs/log.txt", b"the user's own")
    (src / "log.txt").write_bytes(b"epoch 1\nepoch 2\n")
    _push(emulator, src)
    live = [f for f in emulator.files() if f["title"] == "log.txt"
            and not f["labels"]["trashed"]]
    by_md5 = sorted(f["md5Checksum"] for f in live)
    if how == "moved":
        assert by_md5 == sorted([_md5(b"epoch 1\n"), _md5(b"epoch 1\nepoch 2\n")])
        assert [f["parents"][0]["id"] for f in live if f["id"] == mine["id"]] == [other]
    else:
        assert by_md5 == sorted([_md5(b"the user's own"), _md5(b"epoch 1\nepoch 2\n")])
        assert mine["id"] not in {f["id"] for f in live}
