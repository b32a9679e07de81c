"""This machine's temporary folder (``tempfile.tempdir``, as ``TMPDIR`` sets it) inside the
test's own folder, for tests of what the code under test writes there or leaves behind (a
stop's copy elsewhere, a rescued state): not this machine's /tmp, where such a copy stays for
good, on purpose, when it is the only one."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path, monkeypatch) -> Path:
    """``tmp_path / "tmp"``, made, as ``tempfile.tempdir`` for the test (autouse in each
    module that imports it)."""
    here = tmp_path / "tmp"
    here.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(here))
    return here
