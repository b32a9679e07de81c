"""attackstream40: Drive flags the *sidecar* of the run's newest checkpoint as malware or spam
(its scanner flags what it cannot tell; a JSON file beside a flagged ``.pt``, or on its own).

attacktrain40 made a resume fetch a flagged checkpoint acknowledging the flag; the sidecars,
read before any checkpoint is chosen, were not: every ``--resume auto`` and ``trainer status``
of the folder stopped at the flagged sidecar with pull's advice, ``pull again with
--acknowledge-abuse``, an option the trainer lacks. The run wrote the sidecar, so it is read
acknowledging the flag (a few hundred bytes of JSON, parsed as data), with a warning.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil

import pytest
from click.testing import CliRunner

from _tiny_run import warnings_said
from tests.test_attacktrain40_flagged import _config
from trainer.engine import fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WARNING = ("Drive flagged drive:runs/a/epoch_002.json as malware or spam; the run wrote it, so "
           "it is read acknowledging that (acknowledgeAbuse, which Drive allows its owner)")


def _flag_newest_sidecar(emulator) -> str:
    from drivestage.remote import open_store

    store, path = open_store("drive:runs/a")
    side = {e.name: e for e in store.list(store.resolve(path))}["epoch_002.json"]
    emulator.set_abusive(side.id)
    return side.id


def test_a_resume_and_status_read_the_runs_own_flagged_sidecar(
        tmp_path, emulator, drive_env, local_state, caplog):
    from trainer.cli import cli

    fit(_config(tmp_path, 2), resume="none")
    shutil.rmtree(tmp_path / "logs")    # (a fresh machine)
    _flag_newest_sidecar(emulator)
    cfg = _config(tmp_path, 3)

    with caplog.at_level(logging.INFO, logger="trainer"):
        result = fit(cfg, resume="auto")
    assert result.resumed_from == "drive:runs/a/epoch_002.pt" and result.epochs_run == 1
    warned = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING and r.name.startswith("trainer")]
    assert warned == [WARNING]

    # status, of the folder the resumed run pushed to (its epoch 3's sidecar is not flagged;
    # epoch 2's still is, and is read).
    shutil.rmtree(tmp_path / "logs")
    res = CliRunner().invoke(cli, ["status", "-c", str(tmp_path / "c3.yaml")])
    assert res.exit_code == 0, res.output
    assert "drive:runs/a/epoch_003.pt" in res.stdout
    assert f"WARNING trainer.drive: {WARNING}\n" in res.output


def test_a_flagged_sidecar_drive_serves_to_its_owner_only_passes_its_checkpoint_over(
        tmp_path, emulator, drive_env, local_state, caplog):
    """A sidecar of another account (a collaborator's machine of the run, in a folder shared
    with this one): Drive refuses the acknowledgement; the checkpoint is passed over, said.
    The run's pushes cannot tell whose that epoch_002.pt is either (guards41: before, the
    mirror failed at its read, with pull's --acknowledge-abuse advice): it is kept as it is,
    with its sidecar, said once, and the rest goes on."""
    from tests._drive_state import live_md5s

    fit(_config(tmp_path, 2), resume="none")
    shutil.rmtree(tmp_path / "logs")
    side = _flag_newest_sidecar(emulator)
    emulator.store.update(side, owner="them@x.org")
    emulator.share(side, "writer")
    before = live_md5s(emulator, "runs/a")

    with caplog.at_level(logging.INFO):
        result = fit(_config(tmp_path, 3), resume="auto")
    assert result.resumed_from == "drive:runs/a/epoch_001.pt" and result.epochs_run == 2
    warned = [(r.name, r.getMessage()) for r in warnings_said(caplog)]
    logs = tmp_path / "logs"
    run = json.loads((logs / "epoch_002.json").read_text())["run"]
    assert warned == [
        ("trainer.drive",
         "Drive flagged drive:runs/a/epoch_002.json as malware or spam and serves it to its "
         "owner only: its checkpoint is passed over (download it as its owner, or remove the "
         "flagged pair)"),
        ("drivestage.other_runs",
         "Drive flagged drive:runs/a/epoch_002.json as malware or spam and does not serve it "
         "to this account, so whose run drive:runs/a/epoch_002.pt is cannot be told; left as "
         f"it is, not replaced with {logs / 'epoch_002.pt'} (run {run}, epoch 2). "
         "To replace it, remove that pair there (its owner may read it: drivestage pull "
         "--acknowledge-abuse)")]
    after = live_md5s(emulator, "runs/a")
    # The flagged pair as it was (the local epoch 2 of this resume not sent over it); the
    # resume's epoch 3 went, and epoch 1 (the newest three epochs: drive.keep_last).
    assert {n: after[n] for n in ("epoch_002.pt", "epoch_002.json")} == \
        {n: before[n] for n in ("epoch_002.pt", "epoch_002.json")}
    assert after["epoch_003.pt"] == [hashlib.md5((logs / "epoch_003.pt").read_bytes()).hexdigest()]
    assert after["epoch_003.json"] == [hashlib.md5((logs / "epoch_003.json").read_bytes()).hexdigest()]
    assert sorted(n for n in after if n.startswith("epoch_")) == [
        f"epoch_00{e}.{x}" for e in (1, 2, 3) for x in ("json", "pt")]
