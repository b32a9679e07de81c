"""fidelity26: a file that got shorter on Drive while a pull read it.

Drive answers a ranged GET that starts at or past a file's end with ``416
requestedRangeNotSatisfiable`` (and ``Content-Range: bytes */SIZE``), as the emulator does. A
pull whose file was replaced by a shorter version between two of its ranged reads stopped
with ``Drive answered HTTP 416 requestedRangeNotSatisfiable: Request range not
satisfiable``, which names neither the cause nor the remedy; a file that changed in any
other way says "changed on Drive while downloading (...); run again".
"""
from __future__ import annotations

import os

import pytest

from _envs import env  # noqa: F401  (a fixture)
from _proxy import Proxy, Reply
import _cli

KiB = 1024


@pytest.fixture
def proxy(emulator, env, monkeypatch):
    with Proxy(emulator.url) as p:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", p.url)
        yield p


def test_a_file_shrunk_on_drive_during_a_pull_says_it_changed(emulator, proxy, store, tmp_path):
    emulator.add_file("VOC/set.bin", os.urandom(1024 * KiB))
    newer = tmp_path / "newer.bin"
    newer.write_bytes(os.urandom(10 * KiB))

    def replace_after_the_first_read(status: int, headers: dict, body: bytes) -> Reply:
        entry = store.resolve("VOC/set.bin")
        store.upload(str(newer), store.resolve("VOC"), entry.name, replace=entry)
        return Reply(status, headers, [body])

    proxy.on("GET", r"alt=media", replace_after_the_first_read, times=1)
    code, _, err = _cli.run("pull", "-q", "drive:VOC/set.bin", str(tmp_path / "d"), "-j", "1",
                            "--chunk-size", "256KiB")
    assert code == 1
    media = [r.status for r in emulator.requests if r.kind == "media.download"]
    assert media == [206, 416]   # the second read starts past the new end: asked once
    assert err.splitlines()[-1] == (
        "Error: drive:VOC/set.bin changed on Drive while downloading (size 1048576 became "
        "10240); run again")
    assert not (tmp_path / "d/set.bin").exists()
    code, _, err = _cli.run("pull", "-q", "drive:VOC/set.bin", str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d/set.bin").read_bytes() == newer.read_bytes()
