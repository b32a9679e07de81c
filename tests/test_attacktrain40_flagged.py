"""attacktrain40: Drive flags the run's newest checkpoint as malware or spam (403
``cannotDownloadAbusiveFile``; its scanner flags files it cannot tell, and a pickle-based
``.pt`` is such a file), and a fresh machine resumes from Drive.

The resume stopped with drivestage pull's line, `If you trust it, pull again with
--acknowledge-abuse`: an option ``trainer train`` does not have, however often the cells were
run again: the run could not resume by itself. The trainer wrote that file into its own run
folder, so its account owns it, and Drive serves a flagged file to its owner who acknowledges
the flag; the bytes are those its sidecar vouches for (md5, checked) and load as tensors only
(no pickled object is loaded). The trainer fetches it so now, says so in a warning, and
resumes from it. Drive keeps the file as it is.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import pytest

from trainer.config import load_config
from trainer.drive import DriveFolder
from trainer.engine import fit
from _tiny_run import tiny_run_config, warnings_said

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(tmp_path: Path, epochs: int):
    return load_config(tiny_run_config(tmp_path, epochs))


def test_a_fresh_machine_resumes_from_the_runs_own_checkpoint_drive_flagged(
        tmp_path, emulator, drive_env, local_state, caplog):
    fit(_config(tmp_path, 2), resume="none")
    shutil.rmtree(tmp_path / "logs")    # (a fresh machine)
    looked = DriveFolder("drive:runs/a", str(tmp_path / "x"))
    newest = {c.name: c for c in looked.checkpoints()}["epoch_002.pt"]
    emulator.set_abusive(newest.entry.id)

    with caplog.at_level(logging.INFO, logger="trainer"):
        result = fit(_config(tmp_path, 3), resume="auto")

    assert result.resumed_from == "drive:runs/a/epoch_002.pt" and result.epochs_run == 1
    warned = [r.getMessage() for r in warnings_said(caplog)]
    assert warned == [
        "Drive flagged drive:runs/a/epoch_002.pt as malware or spam; the run wrote it, so it "
        "is fetched acknowledging that (acknowledgeAbuse, which Drive allows its owner): its "
        "bytes are checked against its sidecar's md5 and loaded as tensors only"]
    fetched = tmp_path / "logs" / "epoch_002.pt"
    assert hashlib.md5(fetched.read_bytes()).hexdigest() == newest.entry.md5
    # Drive still holds it, flagged as it was.
    assert {c.name: c.entry.md5 for c in looked.checkpoints()}["epoch_002.pt"] == newest.entry.md5


def _chosen(emulator, spec: str, data: bytes):
    from drivestage.remote import open_store
    from trainer.resume import Chosen

    store, path = open_store(spec)
    return Chosen(spec, hashlib.md5(data).hexdigest(), len(data), store.resolve(path))


def test_another_machine_of_the_run_fetches_the_flagged_checkpoint_rank0_chose(
        emulator, drive_env, tmp_path, caplog):
    """Multi-machine DDP: the other machines' local rank 0 fetch rank 0's choice by id, as
    its owner too where Drive flagged it."""
    from trainer.resume import ensure_local_checkpoint

    data = b"\x50\x4b" + bytes(range(256)) * 400
    emulator.add_file("Models/run/logs/epoch_004.pt", data, abusive=True)
    chosen = _chosen(emulator, "drive:Models/run/logs/epoch_004.pt", data)
    target = tmp_path / "other-machine" / "logs" / "epoch_004.pt"
    target.parent.mkdir(parents=True)

    with caplog.at_level(logging.WARNING, logger="trainer"):
        assert ensure_local_checkpoint(str(target), chosen) == str(target)
    assert target.read_bytes() == data
    assert "Drive flagged drive:Models/run/logs/epoch_004.pt as malware or spam" in caplog.text


def test_a_flagged_checkpoint_this_account_does_not_own_is_still_refused_with_drives_line(
        emulator, drive_env, tmp_path):
    """Drive honours the acknowledgement of the owner only: a run folder shared with this
    account by another (its files theirs) still fails, with drivestage's line (whose advice,
    pulled by the owner, is the way on), and nothing is left under the name."""
    from drivestage.errors import AbusiveFileError
    from trainer.resume import ensure_local_checkpoint

    data = bytes(range(256)) * 400
    fid = emulator.add_file("Models/run/logs/epoch_004.pt", data, abusive=True,
                            owner="them@x.org", shared_with_me="writer")
    chosen = _chosen(emulator, f"drive:id:{fid}", data)
    target = tmp_path / "logs" / "epoch_004.pt"
    target.parent.mkdir(parents=True)

    with pytest.raises(AbusiveFileError, match="Drive flagged this file as malware or spam"):
        ensure_local_checkpoint(str(target), chosen)
    assert not target.exists()
