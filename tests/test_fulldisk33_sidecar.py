"""A push of a checkpoint and its sidecar from a full disk (memsave33 found it).

A push sends a sidecar that vouches for its checkpoint from a private copy (the bytes
checked are the bytes sent: :mod:`drivestage.sidecar_copy`), made in the temporary folder.
On Colab that folder and the run folder are one VM disk; full, the copy failed (``cannot
write a private copy of … [Errno 28]``), the sidecar never reached Drive, and the checkpoint
there never counted as verified (a resume on the next machine passed it over; retention kept
older ones). The private copy goes to memory (``memfd``) when the temporary folder has no
room; the files on Drive are then exactly the local ones.
"""
from __future__ import annotations

import hashlib
import os
import tempfile

import pytest

from _tmpfs import small_disk  # noqa: F401  (fixture)
from drivestage import sidecar
from drivestage.upload_tree import push
from test_attack18_train import _fill

pytestmark = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd: Linux")


def _files_on(emulator, folder: str) -> dict[str, str]:
    fid = emulator.find(folder)["id"]
    return {f["title"]: f.get("md5Checksum") for f in emulator.files()
            if not f["labels"]["trashed"] and fid in [p["id"] for p in f.get("parents") or []]}


@pytest.mark.parametrize("state", ["elsewhere", "on the full disk"])
def test_a_sidecar_is_sent_from_a_full_disk(emulator, local_state, small_disk, monkeypatch,
                                            state):
    disk = small_disk(4 << 20)
    (disk / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(disk / "tmp"))
    if state != "elsewhere":   # (Colab: drivestage's state folder on the VM disk too)
        (disk / "state").mkdir()
        monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(disk / "state"))
    run = disk / "run"
    run.mkdir()
    data = os.urandom(300 << 10)
    (run / "epoch_001.pt").write_bytes(data)
    md5 = hashlib.md5(data).hexdigest()
    side = sidecar.write(str(run / "epoch_001.pt"),
                         sidecar.Sidecar(epoch=1, iteration=10, md5=md5, size=len(data),
                                         run="r1", saved=1.0e9))
    _fill(disk)
    emulator.add_folder("runs/exp1")
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    push(str(run), "drive:runs/exp1", jobs=1)
    side_bytes = open(side, "rb").read()
    assert _files_on(emulator, "runs/exp1") == {
        "epoch_001.pt": md5, "epoch_001.json": hashlib.md5(side_bytes).hexdigest()}
    assert os.listdir(disk / "tmp") == []
