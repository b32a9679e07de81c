"""Messages of a push beside a training loop that saves while it runs (docs/troubleshooting.md)."""
from __future__ import annotations

import hashlib
import logging
import os

import pytest

from _checkpoints import sidecar_json
from _drive_state import live_md5s
from _messages import log_text, renders, shown


@pytest.fixture(autouse=True)
def _world(drive_env, fast_retries, local_state):
    """The emulator as Drive; drivestage's state in tmp_path."""


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as fh:
        fh.write(data)
    os.replace(path + ".tmp", path)


@renders("changed while the push ran (its checkpoint was saved again); not sent")
def test_a_sidecar_saved_again_while_its_checkpoint_was_pushed_is_left_for_the_next_push(
        emulator, store, tmp_path, caplog):
    """The loop saves ``last.pt`` again (and its sidecar) right after the push sent the copy
    it had: the push leaves the new sidecar here and the copy Drive's sidecar vouches for
    there, and warns."""
    from drivestage.upload_tree import push

    logs = str(tmp_path / "logs")
    b0, b1, b2 = os.urandom(500), os.urandom(600), os.urandom(700)
    emulator.add_file("Models/logs/last.pt", b0)
    emulator.add_file("Models/logs/last.json", sidecar_json(1, b0))
    _write(f"{logs}/last.pt", b1)
    _write(f"{logs}/last.json", sidecar_json(2, b1))

    class Saving:
        """The store; the loop saves epoch 3 once the push's copy of last.pt is on Drive."""

        def __getattr__(self, attr):
            return getattr(store, attr)

        def upload(self, local_path, folder, name, **kw):
            entry = store.upload(local_path, folder, name, **kw)
            if name == "last.pt":
                _write(f"{logs}/last.pt", b2)
                _write(f"{logs}/last.json", sidecar_json(3, b2))
            return entry

    with caplog.at_level(logging.WARNING, logger="drivestage"):
        push(logs, "Models/logs", store=Saving())
    text = log_text([r for r in caplog.records if r.levelno == logging.WARNING
                     and "changed while the push ran" in r.getMessage()])
    shown("changed while the push ran (its checkpoint was saved again); not sent", text)
    assert f"{logs}/last.json changed while the push ran" in text
    md5 = hashlib.md5
    assert live_md5s(emulator, "Models/logs") == {
        "last.pt": sorted([md5(b0).hexdigest(), md5(b1).hexdigest()]),
        "last.json": [md5(sidecar_json(1, b0)).hexdigest()]}
    push(logs, "Models/logs", store=store)   # the next push sends both
    assert live_md5s(emulator, "Models/logs") == {
        "last.pt": [md5(b2).hexdigest()], "last.json": [md5(sidecar_json(3, b2)).hexdigest()]}


@renders("cannot write a private copy of … into the temporary folder …; set TMPDIR to a "
         "writable folder with free space")
def test_a_temp_folder_gone_under_a_long_lived_process_is_said(tmp_path, monkeypatch):
    """The temporary folder Python chose at its first use, removed since: the push that sends
    a checkpoint and its sidecar says so and exits 1 (tests/test_attack_dec02b.py holds what
    Drive keeps)."""
    import tempfile

    from _cli import run

    _write(str(tmp_path / "logs" / "epoch_001.pt"), b"w" * 100)
    _write(str(tmp_path / "logs" / "epoch_001.json"), sidecar_json(1, b"w" * 100))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    scratch.rmdir()
    code, out, err = run("push", str(tmp_path / "logs"), "drive:Models/logs")
    assert code == 1
    shown("cannot write a private copy of … into the temporary folder …; set TMPDIR to a "
          "writable folder with free space", err)
