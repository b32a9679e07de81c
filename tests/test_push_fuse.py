"""A push's md5 cache on a FUSE or network mount.

A FUSE daemon (rclone, gcsfuse, Colab's Drive) reports the identity it likes: the ctime is
the mtime, the inode the path's. A rewrite made through the remote (another machine) that
keeps the size and the mtime keeps the whole identity, and an NFS client shows a cached one
for up to 60 s. The push md5 cache (``state_dir()/md5-cache.json``) keyed by that identity
called such a file unchanged, and the new bytes never reached Drive. Simulated on this disk
as tests/test_attack23_stage.py does: a mount table that names the folder's device a FUSE
(or NFS) one, and the cache's recorded identity set to the rewritten file's (what such a
mount reports for it).
"""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from test_attack23_stage import _as_fuse
from test_messages_walk20 import _drivestage


def _cache_says_unchanged(state, path, md5: str) -> None:
    """An md5-cache entry that records ``path``'s identity as it is now with ``md5`` (what
    an earlier push wrote, before it knew the mount; what the mount shows after a rewrite)."""
    cache = state / "md5-cache.json"
    entries = json.loads(cache.read_text()) if cache.exists() else {}
    st = os.stat(path)
    entries[os.path.abspath(path)] = [st.st_size, st.st_mtime_ns, md5, st.st_ino,
                                      st.st_ctime_ns]
    cache.write_text(json.dumps(entries))


def _rewrite_same_size_and_mtime(path, data: bytes) -> None:
    st = os.stat(path)
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("mount", ["fuse.rclone gdrive:", "nfs4 nas:/data"])
def test_a_rewrite_on_a_fuse_mount_that_keeps_its_identity_is_sent(
        mount, emulator, drive_env, local_state, tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    _as_fuse(tmp_path, monkeypatch, str(logs), mount)
    f = logs / "last.pt"
    v1, v2 = b"a" * 4096, b"b" * 4096
    f.write_bytes(v1)
    assert _drivestage("push", str(logs), "drive:runs/r1").exit_code == 0
    assert emulator.read_bytes(emulator.find("runs/r1/last.pt")["id"]) == v1
    _rewrite_same_size_and_mtime(f, v2)
    _cache_says_unchanged(local_state / "state", f, hashlib.md5(v1).hexdigest())
    r = _drivestage("push", str(logs), "drive:runs/r1")
    assert r.exit_code == 0, r.output
    on_drive = emulator.find("runs/r1/last.pt")
    assert emulator.read_bytes(on_drive["id"]) == v2, r.output    # was v1: "1 unchanged"
    assert on_drive["md5Checksum"] == hashlib.md5(v2).hexdigest()


def test_on_a_local_disk_the_cache_still_spares_the_hash(emulator, drive_env, local_state,
                                                         tmp_path):
    """The guard: an unchanged file on a local disk is not read again by the next push."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "last.pt").write_bytes(b"a" * 4096)
    assert _drivestage("push", str(logs), "drive:runs/r1").exit_code == 0
    cache = json.loads((local_state / "state" / "md5-cache.json").read_text())
    assert os.path.abspath(logs / "last.pt") in cache
