"""`drivestage pull` measures the hash rates that choose a download's checksum in a thread
from its start (hashlib hashes without the GIL: on the other core while the Drive client's
modules load), and the download waits for that measurement instead of making its own."""
from __future__ import annotations

import os
import threading

import pytest

from drivestage import checksums

from _archives import a_zip, tree
from _cli import run


@pytest.fixture
def measured(monkeypatch):
    """No measurement made yet in this process; each one recorded: (thread, name, whether
    the early thread had ended when the main thread asked)."""
    monkeypatch.setattr(checksums, "_EARLY", None)
    got: list[tuple[str, str, bool]] = []
    rates = {"md5": 7e8, "sha256": 1.5e9}

    def _measured(name: str) -> float:
        early = checksums._EARLY
        got.append((threading.current_thread().name, name,
                    early is not None and early.ended.is_set()))
        return rates[name]

    monkeypatch.setattr(checksums, "_measured", _measured)
    return got


def test_a_pull_measures_the_hash_rates_in_a_thread_from_its_start(emulator, drive_env,
                                                                   tmp_path, measured):
    blob = a_zip({"a.txt": b"a" * 1000})
    emulator.add_file("d/a.zip", blob)
    code, out, err = run("pull", "drive:d/a.zip", str(tmp_path / "data"), "-q")
    assert code == 0, err
    assert tree(tmp_path / "data") == {"a.zip": blob}
    early = [(t, n) for t, n, _ in measured if t != "MainThread"]
    assert early == [("drivestage-hash-rate", "md5"), ("drivestage-hash-rate", "sha256")]
    asked = [ended for t, _, ended in measured if t == "MainThread"]
    assert asked and all(asked)   # the download waited for it, and measured nothing itself


def test_a_checksum_named_by_the_environment_is_the_only_one_measured(
        emulator, drive_env, tmp_path, measured, monkeypatch):
    monkeypatch.setenv(checksums.ENV, "md5")
    emulator.add_file("d/b.bin", os.urandom(5000))
    code, out, err = run("pull", "drive:d/b.bin", str(tmp_path / "data"), "-q")
    assert code == 0, err
    assert [(t, n) for t, n, _ in measured if t != "MainThread"] == \
        [("drivestage-hash-rate", "md5")]


def test_a_wrong_checksum_in_the_environment_is_still_said_by_the_pull(
        emulator, drive_env, tmp_path, measured, monkeypatch):
    monkeypatch.setenv(checksums.ENV, "crc32")
    emulator.add_file("d/c.bin", os.urandom(5000))
    code, out, err = run("pull", "drive:d/c.bin", str(tmp_path / "data"), "-q")
    assert code == 2, err
    assert "DRIVESTAGE_CHECKSUM='crc32' is not a checksum drivestage knows" in err
