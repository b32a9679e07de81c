"""A long process's sweep of the private copies dead pushes left in the temporary folder
(attacksync35)."""
from __future__ import annotations

import os
import tempfile

from drivestage import localfs, sidecar_copy, temps


def test_a_long_process_sweeps_the_temporary_folder_again(tmp_path, monkeypatch):
    """``drivestage mirror`` (or a training run's CheckpointSync) runs for days: it looked
    through $TMPDIR for dead pushes' private copies (a sidecar's, a changing log's snapshot:
    up to 64 MiB each) once, at its first copy, and never again; a push killed after that (a
    one-off ``push`` beside it, SIGKILLed) left its copies for the life of the mirror. It
    looks again once a minute at most, as the atomic writes' sweep does (that minute made
    none here: the test does not wait for it)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(localfs, "SWEEP_EVERY_S", 0.0)
    side = tmp_path / "last.json"
    side.write_text("{}")
    with sidecar_copy.private(str(side), b"{}"):
        pass
    dead = scratch / f".drivestage-sidecar-{temps.namespace_tag()}.4194999-ab12cd34.json"
    dead.write_text("{}")   # a push killed since, its pid gone (above any pid_max)

    with sidecar_copy.private(str(side), b"{}"):
        pass

    assert os.listdir(scratch) == []
