"""Replacing files on Drive (issues 10 and 12): a checkpoint is replaced by a new, verified
file before the old one goes; other files are updated in place without keeping a revision."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from drivestage.upload_tree import push


def _write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def _live(emu, folder="Models/logs"):
    """name -> [file resources] of the live files directly in ``folder``."""
    top = emu.find(folder)["id"]
    out = {}
    for f in emu.files():
        if f["labels"]["trashed"] or not any(p["id"] == top for p in f.get("parents") or []):
            continue
        out.setdefault(f["title"], []).append(f)
    return out


def test_in_place_updates_keep_no_old_revisions(emulator, store, env):
    src = str(env / "logs")
    for n in range(3):
        _write(os.path.join(src, "results.csv"), b"epoch\n" + b"".join(b"%d\n" % i for i in range(n + 1)))
        _write(os.path.join(src, "tb", "events.out.tfevents.1"), os.urandom(100 + n))
        push(src, "Models/logs", store=store)
    for path in ("Models/logs/results.csv", "Models/logs/tb/events.out.tfevents.1"):
        f = emulator.find(path)
        revs = emulator.revisions(f["id"])
        assert len(revs) == 1, (path, revs)
        assert revs[0]["md5Checksum"] == f["md5Checksum"]
    updates = [r for r in emulator.requests if r.method == "PUT" and r.path.startswith(
        "/upload/drive/v2/files/") and "upload_id" not in r.query]
    assert updates and all(r.query.get("newRevision") == "false" for r in updates)
