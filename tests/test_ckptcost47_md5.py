"""A checkpoint the writer just wrote (hashed as it was written) is never read again for its
md5: the Drive folder's md5 cache keeps the md5 it is told, though the file's ctime (its
rename) is in the same tick. Before, each 94 MB autosave was read and hashed again by the
next push (its md5 dropped as "racily clean")."""
from __future__ import annotations

import hashlib
import os
import time

import pytest
import torch

from drivestage import state as ds_state

from trainer.drive import DriveFolder
from trainer.state import Position
from trainer.writer import BackgroundWriter, SaveJob


@pytest.fixture(autouse=True)
def racy(monkeypatch):
    """The real rule (tests/conftest.py turns it off for the rest)."""
    monkeypatch.setattr(ds_state, "RACY_NS", 50_000_000)


def _job(iteration):
    state = {"format_version": 2, "model": {"w": torch.full((50_000,), float(iteration))},
             "optimizer": {}, "epoch": 0, "iteration": iteration, "epoch_iteration": iteration,
             "config": {}, "run": "r"}
    return SaveJob(state, [f"autosave_{iteration:08d}.pt"], Position(0, iteration, iteration))


def test_a_written_checkpoints_md5_is_kept_at_once(emulator, drive_env, local_state, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    folder = DriveFolder("drive:Models/m/logs", str(out))
    path = out / "autosave_00000001.pt"
    path.write_bytes(b"x" * 1000)
    os.replace(path, path)                   # (a rename: the ctime of now, as a save's)
    folder.known_md5(str(path), hashlib.md5(b"x" * 1000).hexdigest())
    assert folder._cache.get(str(path)) == hashlib.md5(b"x" * 1000).hexdigest()


def test_the_writer_tells_the_md5_and_the_push_verifies_it(emulator, drive_env, local_state,
                                                           tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    folder = DriveFolder("drive:Models/m/logs", str(out))
    writer = BackgroundWriter(str(out), folder)
    jobs = [_job(1), _job(2)]
    for job in jobs:
        writer.write_now(job, time.monotonic() + 20)
    assert writer.close(lambda: time.monotonic() + 20)
    for job in jobs:
        path = str(out / job.name)
        md5 = hashlib.md5(open(path, "rb").read()).hexdigest()
        assert folder._cache.get(path) == md5        # kept: no push reads it again
        assert writer.verified(job.name)
    remote = {f["title"]: f.get("md5Checksum") for f in emulator.files()
              if not f["labels"]["trashed"] and f["title"].endswith(".pt")}
    assert remote == {j.name: hashlib.md5(open(out / j.name, "rb").read()).hexdigest()
                      for j in jobs}
