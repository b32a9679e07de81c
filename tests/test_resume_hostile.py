"""A resume from Drive against a hostile folder: titles that are paths, sidecars that lie about
the run or the position of the bytes they vouch for. The trainer must never write outside
``train.out_dir`` and never continue another run or an older point than the newest verified."""
from __future__ import annotations

import hashlib
import io
import json
import os
from types import SimpleNamespace

import pytest
import torch

FOLDER = "Models/logs"


def _state(run: str, epoch: int, iteration: int) -> bytes:
    """A minimal full checkpoint (what load_checkpoint accepts)."""
    buf = io.BytesIO()
    torch.save({"format_version": 2, "model": {}, "optimizer": {}, "epoch": epoch,
                "iteration": iteration, "epoch_iteration": 0, "config": {}, "run": run}, buf)
    return buf.getvalue()


def _insert(store, folder_id: str, title: str, data: bytes) -> str:
    """A file with any title (slashes included, as Drive allows), through the real client."""
    from googleapiclient.http import MediaInMemoryUpload

    res = store.service.files().insert(
        body={"title": title, "parents": [{"id": folder_id}]},
        media_body=MediaInMemoryUpload(data, mimetype="application/octet-stream")).execute()
    return res["id"]


def _sidecar(data: bytes, run: str, epoch: int, iteration: int) -> bytes:
    return json.dumps({"epoch": epoch, "iteration": iteration, "epoch_iteration": 0, "run": run,
                       "md5": hashlib.md5(data).hexdigest(), "size": len(data)}).encode()


@pytest.fixture
def store(emulator, drive_env, local_state):
    from drivestage.drive import connect

    return connect(api_root=emulator.url, token="test-token")


def _decide(out_dir: str):
    from trainer.drive import DriveFolder
    from trainer.resume import _decide

    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=out_dir))
    return _decide(cfg, "auto", DriveFolder(f"drive:{FOLDER}", out_dir))


@pytest.mark.parametrize("title", ["../escape.pt", "/tmp-escape/x.pt", "sub/../../escape.pt"])
def test_a_title_that_is_a_path_is_never_fetched_outside_the_run_folder(emulator, store,
                                                                       tmp_path, title):
    folder = emulator.add_folder(FOLDER)
    good = _state("r1", 1, 10)
    emulator.add_file(f"{FOLDER}/epoch_001.pt", good)
    emulator.add_file(f"{FOLDER}/epoch_001.json", _sidecar(good, "r1", 1, 10))
    evil = b"not a checkpoint"
    _insert(store, folder, title, evil)
    _insert(store, folder, os.path.splitext(title)[0] + ".json", _sidecar(evil, "r1", 9, 90))
    out_dir = tmp_path / "work" / "logs"
    out_dir.mkdir(parents=True)
    victim = tmp_path / "work" / "escape.pt"
    victim.write_bytes(b"the user's own file")
    start = _decide(str(out_dir))
    assert victim.read_bytes() == b"the user's own file"
    assert start.path == str(out_dir / "epoch_001.pt")
    assert sorted(os.listdir(tmp_path / "work")) == ["escape.pt", "logs"]
    assert not os.path.exists("/tmp-escape")


def test_a_sidecar_that_lies_about_the_run_of_its_bytes_is_not_resumed(emulator, store,
                                                                        tmp_path, caplog):
    """epoch_002.pt holds another run's state, its sidecar claims run r1: resuming it would
    continue the other run in r1's folder."""
    ours = _state("r1", 1, 10)
    emulator.add_file(f"{FOLDER}/epoch_001.pt", ours)
    emulator.add_file(f"{FOLDER}/epoch_001.json", _sidecar(ours, "r1", 1, 10))
    theirs = _state("r2", 5, 50)
    emulator.add_file(f"{FOLDER}/epoch_002.pt", theirs)
    emulator.add_file(f"{FOLDER}/epoch_002.json", _sidecar(theirs, "r1", 2, 20))
    out_dir = tmp_path / "logs"
    with caplog.at_level("WARNING", logger="trainer"):
        start = _decide(str(out_dir))
    assert start.path == str(out_dir / "epoch_001.pt")
    assert any("epoch_002.pt" in r.getMessage() and "cannot be used" in r.getMessage()
               for r in caplog.records)


def test_a_local_folder_behind_drive_resumes_from_drives_newer_checkpoint(emulator, store,
                                                                         tmp_path):
    """Machine A died at epoch 2 with its disk kept (a spot VM); machine B resumed from Drive
    and reached epoch 3. A comes back: its local epoch 2 is older than the newest verified
    checkpoint of the same run on Drive, which is where it must continue."""
    from drivestage import sidecar as sidecars

    out_dir = tmp_path / "logs"
    out_dir.mkdir()
    two, three = _state("r1", 2, 20), _state("r1", 3, 30)
    (out_dir / "epoch_002.pt").write_bytes(two)
    (out_dir / "epoch_002.json").write_bytes(_sidecar(two, "r1", 2, 20))
    for name, data, epoch in (("epoch_002", two, 2), ("epoch_003", three, 3)):
        emulator.add_file(f"{FOLDER}/{name}.pt", data)
        emulator.add_file(f"{FOLDER}/{name}.json", _sidecar(data, "r1", epoch, epoch * 10))
    start = _decide(str(out_dir))
    assert start.path == str(out_dir / "epoch_003.pt")
    assert (out_dir / "epoch_003.pt").read_bytes() == three
    assert sidecars.parse((out_dir / "epoch_003.json").read_bytes()).epoch == 3


def test_a_liar_ahead_on_drive_is_neither_resumed_nor_shown_as_safe(emulator, store, tmp_path,
                                                                    caplog):
    """The local folder holds epoch 2; Drive holds the same epoch 2 and a checkpoint of the run
    whose sidecar claims 10**9 epochs (its bytes hold epoch 1). The trainer resumes locally,
    and what it shows as safe on Drive (until its first upload) is epoch 2, not the liar."""
    out_dir = tmp_path / "logs"
    out_dir.mkdir()
    one, two = _state("r1", 1, 10), _state("r1", 2, 20)
    (out_dir / "epoch_002.pt").write_bytes(two)
    (out_dir / "epoch_002.json").write_bytes(_sidecar(two, "r1", 2, 20))
    emulator.add_file(f"{FOLDER}/epoch_002.pt", two)
    emulator.add_file(f"{FOLDER}/epoch_002.json", _sidecar(two, "r1", 2, 20))
    emulator.add_file(f"{FOLDER}/epoch-big.pt", one)
    emulator.add_file(f"{FOLDER}/epoch-big.json", _sidecar(one, "r1", 10**9, 10**10))
    with caplog.at_level("WARNING", logger="trainer"):
        start = _decide(str(out_dir))
    assert start.path == str(out_dir / "epoch_002.pt")
    assert any("epoch-big.pt" in r.getMessage() and "cannot be used" in r.getMessage()
               for r in caplog.records)
    assert start.safe is not None and start.safe.name == "epoch_002.pt"
    assert not (out_dir / "epoch-big.pt").exists()


def _gone_after_listing(emulator, file_id: str) -> None:
    """Drive's answer for a file another machine's retention deleted after this machine listed
    the folder (404 notFound on its bytes), every time it is asked."""
    emulator.faults.inject("GET", rf"/files/{file_id}\?.*alt=media", status=404,
                           reason="notFound", times=None)


def test_a_sidecar_deleted_between_the_listing_and_its_read_is_skipped(emulator, store,
                                                                      tmp_path):
    """A push or CheckpointSync elsewhere retired epoch_001 while this machine listed the
    folder (the demo's watcher and every resume list, then read each sidecar): the listing
    still holds it, its read answers 404. It is not a checkpoint to resume from, nor a crash."""
    from trainer.drive import DriveFolder

    one, two = _state("r1", 1, 10), _state("r1", 2, 20)
    emulator.add_file(f"{FOLDER}/epoch_001.pt", one)
    side_id = emulator.add_file(f"{FOLDER}/epoch_001.json", _sidecar(one, "r1", 1, 10))
    emulator.add_file(f"{FOLDER}/epoch_002.pt", two)
    emulator.add_file(f"{FOLDER}/epoch_002.json", _sidecar(two, "r1", 2, 20))
    _gone_after_listing(emulator, side_id)
    found = DriveFolder(f"drive:{FOLDER}", str(tmp_path / "logs")).checkpoints()
    assert [c.name for c in found] == ["epoch_002.pt"]


def test_a_checkpoint_deleted_between_the_listing_and_its_download_falls_back(emulator, store,
                                                                             tmp_path, caplog):
    """The newest checkpoint went (another machine's retention) after the listing: resume takes
    the next one instead of failing the start."""
    one, two = _state("r1", 1, 10), _state("r1", 2, 20)
    emulator.add_file(f"{FOLDER}/epoch_001.pt", one)
    emulator.add_file(f"{FOLDER}/epoch_001.json", _sidecar(one, "r1", 1, 10))
    two_id = emulator.add_file(f"{FOLDER}/epoch_002.pt", two)
    emulator.add_file(f"{FOLDER}/epoch_002.json", _sidecar(two, "r1", 2, 20))
    _gone_after_listing(emulator, two_id)
    out_dir = tmp_path / "logs"
    with caplog.at_level("WARNING", logger="trainer"):
        start = _decide(str(out_dir))
    assert start.path == str(out_dir / "epoch_001.pt")
    assert (out_dir / "epoch_001.pt").read_bytes() == one
    assert sorted(os.listdir(out_dir)) == ["epoch_001.json", "epoch_001.pt"]
    assert any("epoch_002.pt" in r.getMessage() and "cannot be used" in r.getMessage()
               for r in caplog.records)
