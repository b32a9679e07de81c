"""Shared fixtures: a real emulator over HTTP on 127.0.0.1 and environments pointing at it."""
from __future__ import annotations

import pytest


@pytest.fixture
def emulator(tmp_path):
    """A fresh Drive API emulator on a random loopback port, stopped after the test."""
    from drivestage.emulator import Emulator

    with Emulator(data_dir=str(tmp_path / "drive-data")) as emu:
        yield emu


@pytest.fixture
def drive_env(emulator, monkeypatch):
    """Point drivestage (library and CLI in this process) at the emulator."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    return {"DRIVESTAGE_API_ROOT": emulator.url, "DRIVESTAGE_TOKEN": "test-token"}
