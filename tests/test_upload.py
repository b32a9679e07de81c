"""Uploads: local state (md5 cache, sessions) and resumable, verified uploads over the real stack."""
from __future__ import annotations

import hashlib
import os

import pytest

from drivestage.upload import Md5Cache, UploadSessions, file_md5


def test_md5_cache_hashes_once_and_notices_changes(tmp_path):
    f = tmp_path / "ckpt.pt"
    f.write_bytes(b"a" * 1000)
    cache = Md5Cache(tmp_path / "state" / "md5.json")
    assert cache.md5(str(f)) == hashlib.md5(b"a" * 1000).hexdigest()
    cache.save()
    # A new process (new cache object) finds it without hashing.
    again = Md5Cache(tmp_path / "state" / "md5.json")
    assert again.get(str(f)) == hashlib.md5(b"a" * 1000).hexdigest()
    # Same size, new mtime: not trusted.
    f.write_bytes(b"b" * 1000)
    os.utime(f, ns=(1, 1))
    assert again.get(str(f)) is None
    assert again.md5(str(f)) == file_md5(str(f)) == hashlib.md5(b"b" * 1000).hexdigest()


def test_md5_cache_survives_a_damaged_state_file(tmp_path):
    state = tmp_path / "md5.json"
    state.write_text("{not json")
    f = tmp_path / "x"
    f.write_bytes(b"x")
    cache = Md5Cache(state)
    assert cache.md5(str(f)) == hashlib.md5(b"x").hexdigest()
    cache.save()
    assert Md5Cache(state).get(str(f)) == hashlib.md5(b"x").hexdigest()


def test_sessions_persist_and_merge_between_writers(tmp_path):
    path = tmp_path / "sessions.json"
    a, b = UploadSessions(path), UploadSessions(path)
    a.put("k1", {"uri": "http://x/1"})
    b.put("k2", {"uri": "http://x/2"})        # b did not read k1 first: still kept
    assert set(UploadSessions(path).all()) == {"k1", "k2"}
    a.drop("k1")
    assert UploadSessions(path).all() == {"k2": {"uri": "http://x/2"}}
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
