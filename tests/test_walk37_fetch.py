"""walk37: ``CheckpointSync.fetch`` of the checkpoint ``latest_remote_checkpoint`` chose, when
another machine's push replaced that checkpoint's pair on Drive between the listing and the
download (a new copy of ``last.pt`` and its sidecar sent, the old copy deleted). Before, the
fetch failed with "not found" for a checkpoint Drive holds, newer; now it lists the folder
again and fetches the copy of that name the sidecar vouches for now (at most
:data:`drivestage.hooks.MAX_RELISTS` times, as the trainer's resume), never bytes the
sidecar on Drive does not vouch for, and nothing at the target when it gives up.

Through the real stack (PyDrive2, googleapiclient, the emulator over HTTP); the other
machine's push is a real push through its own store, run by a proxy in front of the
emulator right after it answered a listing of the folder (tests/_proxy.py): between the
listing and the download, every time. No sleeps."""
from __future__ import annotations

import hashlib
import os
import threading

import pytest

from drivestage import sidecar
from drivestage.errors import NotFoundError, RemoteChangedError
from drivestage.hooks import MAX_RELISTS, CheckpointSync
from drivestage.retention import RetentionPolicy
from drivestage.sidecar import Sidecar
from drivestage.upload_tree import push


class Other:
    """Another machine: saves ``last.pt`` with its sidecar and pushes into ``logs``."""

    def __init__(self, emulator, folder) -> None:
        from drivestage.drive import connect

        self.store = connect(api_root=emulator.url, token="test-token")
        self.folder = folder
        folder.mkdir()
        self.saves: list[bytes] = []
        self.lock = threading.Lock()

    def save(self) -> bytes:
        with self.lock:
            data = f"state after save {len(self.saves) + 1}\n".encode() * 100
            path = self.folder / "last.pt"
            path.write_bytes(data)
            sidecar.write(str(path), Sidecar(epoch=len(self.saves) + 1, md5=_md5(data),
                                             size=len(data), saved=1.8e9 + len(self.saves)))
            push(str(self.folder), (self.store, "logs"), RetentionPolicy())
            self.saves.append(data)
            return data


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _replace_after_listing(proxy, emulator, other: Other, times=None) -> None:
    """After each answer to a listing of ``logs``'s children (``times`` of them; None: every
    one), before the client reads it: the other machine pushes a new pair."""
    folder = emulator.find("logs")["id"]

    def meanwhile(status, headers, body):
        from _proxy import Reply
        other.save()
        return Reply(status, headers, [body])
    proxy.on("GET", rf"^/drive/v2/files\?.*%27{folder}%27", meanwhile, times=times)


def _on_drive(emulator) -> tuple[bytes, dict]:
    """``logs/last.pt``'s bytes on Drive now, and what ``logs/last.json`` says."""
    import json
    data = emulator.read_bytes(emulator.find("logs/last.pt")["id"])
    return data, json.loads(emulator.read_bytes(emulator.find("logs/last.json")["id"]))


def _sync(proxy, tmp_path):
    from drivestage.drive import connect

    store = connect(api_root=proxy.url, token="test-token")
    return CheckpointSync((store, "logs"), RetentionPolicy(), local_dir=str(tmp_path / "b"))


def _asked(proxy, emulator) -> tuple[int, int]:
    """This machine's requests so far (through the proxy; the other machine's go straight to
    the emulator): listings of ``logs``'s children, downloads."""
    folder = emulator.find("logs")["id"]
    return (proxy.count("GET", rf"^/drive/v2/files\?.*%27{folder}%27"),
            proxy.count("GET", r"alt=media"))


def test_a_pair_replaced_after_the_listing_is_fetched_as_drive_has_it_now(
        emulator, proxy, env, tmp_path):
    """The push replaces ``last.pt`` (save 2 over save 1) after
    ``latest_remote_checkpoint``'s listing: the chosen copy is gone when ``fetch`` asks for
    it. One listing more, and the target holds save 2's bytes, which ``last.json`` on Drive
    vouches for. Before: NotFoundError ("not found on Drive (HTTP 404 …)")."""
    other = Other(emulator, tmp_path / "a")
    first = other.save()
    sync = _sync(proxy, tmp_path)
    try:
        entry = sync.latest_remote_checkpoint()
        assert entry is not None and entry.md5 == _md5(first)
        other.save()
        assert emulator.find("logs/last.pt")["id"] != entry.id   # (gone: replaced)
        before = _asked(proxy, emulator)

        path = sync.fetch(entry, str(tmp_path / "b" / "last.pt"))

        with open(path, "rb") as fh:
            got = fh.read()
        data, side = _on_drive(emulator)
        assert got == data == other.saves[1]
        assert side["md5"] == _md5(got)
        lists, downloads = _asked(proxy, emulator)
        # (the gone copy asked once, the sidecar read, save 2's copy)
        assert (lists - before[0], downloads - before[1]) == (1, 3)
        assert sorted(os.listdir(tmp_path / "b")) == ["last.pt"]
    finally:
        sync.on_train_end()


def test_a_pair_replaced_during_the_listing_is_listed_again(emulator, proxy, env, tmp_path):
    """The push replaces the pair right after Drive answered ``latest_remote_checkpoint``'s
    listing: the sidecar it then reads holds other bytes than listed. Before: that
    checkpoint counted as none, and the call answered None, a fresh machine's resume started
    over while Drive held save 2. Now: listed once more, save 2's copy, then fetched."""
    other = Other(emulator, tmp_path / "a")
    other.save()
    sync = _sync(proxy, tmp_path)
    try:
        _replace_after_listing(proxy, emulator, other, times=1)

        entry = sync.latest_remote_checkpoint()

        assert entry is not None and entry.md5 == _md5(other.saves[1])
        assert _asked(proxy, emulator)[0] == 2
        path = sync.fetch(entry, str(tmp_path / "b" / "last.pt"))
        with open(path, "rb") as fh:
            assert fh.read() == other.saves[1] == _on_drive(emulator)[0]
    finally:
        sync.on_train_end()


def test_a_pair_replaced_after_every_listing_is_given_up_after_three_relists(
        emulator, proxy, env, tmp_path):
    """The push replaces the pair after the listing, and again after each listing the fetch
    makes: it lists :data:`MAX_RELISTS` (3) times, then raises :class:`RemoteChangedError`
    in one line, and leaves nothing at the target, no partial download beside it."""
    other = Other(emulator, tmp_path / "a")
    other.save()
    sync = _sync(proxy, tmp_path)
    try:
        entry = sync.latest_remote_checkpoint()
        other.save()
        _replace_after_listing(proxy, emulator, other)
        before = _asked(proxy, emulator)

        with pytest.raises(RemoteChangedError) as caught:
            sync.fetch(entry, str(tmp_path / "b" / "last.pt"))

        assert MAX_RELISTS == 3
        assert str(caught.value) == (
            "drive:logs/last.pt was replaced on Drive 4 times while it was fetched (another "
            "machine pushing it); nothing was fetched: ask latest_remote_checkpoint() again, "
            "or fetch it once that machine is done")
        lists, downloads = _asked(proxy, emulator)
        # (each try of the gone copy, and the sidecar read after each listing)
        assert (lists - before[0], downloads - before[1]) == (MAX_RELISTS,
                                                              2 * MAX_RELISTS + 1)
        assert os.listdir(tmp_path / "b") == []
    finally:
        proxy.rules.clear()
        sync.on_train_end()


def test_a_checkpoint_deleted_after_the_listing_is_not_swapped_for_another(
        emulator, proxy, env, tmp_path):
    """``epoch_001.pt`` chosen, then another machine's retention deletes its pair
    (``epoch_002.pt`` saved): the fetch lists again, finds no ``epoch_001.pt`` and raises
    NotFoundError naming it, nothing at the target: never ``epoch_002.pt``'s bytes under
    the name the caller asked for."""
    a = tmp_path / "a"
    a.mkdir()
    from drivestage.drive import connect
    store_a = connect(api_root=emulator.url, token="test-token")
    data = b"epoch one\n" * 50
    (a / "epoch_001.pt").write_bytes(data)
    sidecar.write(str(a / "epoch_001.pt"), Sidecar(epoch=1, md5=_md5(data), size=len(data),
                                                   saved=1.8e9))
    push(str(a), (store_a, "logs"), RetentionPolicy(keep_last=1))
    sync = _sync(proxy, tmp_path)
    try:
        entry = sync.latest_remote_checkpoint()
        assert entry is not None and entry.name == "epoch_001.pt"
        (a / "epoch_001.pt").unlink()
        os.unlink(a / "epoch_001.json")
        data2 = b"epoch two\n" * 50
        (a / "epoch_002.pt").write_bytes(data2)
        sidecar.write(str(a / "epoch_002.pt"), Sidecar(epoch=2, md5=_md5(data2),
                                                       size=len(data2), saved=1.8e9 + 1))
        push(str(a), (store_a, "logs"), RetentionPolicy(keep_last=1))
        assert emulator.find("logs/epoch_001.pt") is None

        with pytest.raises(NotFoundError) as caught:
            sync.fetch(entry, str(tmp_path / "b" / "epoch_001.pt"))

        assert str(caught.value) == (
            "drive:logs/epoch_001.pt is no longer on Drive (deleted since it was listed: "
            "another machine's push or retention); nothing was fetched: ask "
            "latest_remote_checkpoint() again")
        assert os.listdir(tmp_path / "b") == []
    finally:
        sync.on_train_end()
