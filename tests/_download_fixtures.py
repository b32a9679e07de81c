"""Fixtures the download tests share (imported into test_download and test_attack_streams)."""
from __future__ import annotations

import pytest

from drivestage import streams
from drivestage.drive import connect


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter, for every test here."""


@pytest.fixture
def store(drive_env):
    return connect()


@pytest.fixture
def out(tmp_path):
    """Where downloads land (tmp_path itself also holds the emulator's data)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture
def small_splits(monkeypatch):
    """Split thresholds lowered, so that small files show the behaviour of large ones."""
    monkeypatch.setattr(streams, "_MIN_SPLIT", 64 * 1024)
    monkeypatch.setattr(streams, "_SPLIT_SECONDS", 0.0)
    monkeypatch.setattr(streams, "_ADAPT_FROM", 256 * 1024)


@pytest.fixture
def passes(monkeypatch):
    """Every Pass begun in this test, in order (the hooks act on it)."""
    begun: list[streams.Pass] = []
    original = streams.Pass.begin

    def begin(self):
        if self not in begun:
            begun.append(self)
        original(self)

    monkeypatch.setattr(streams.Pass, "begin", begin)
    return begun
