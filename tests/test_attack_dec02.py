"""Attacks of 2 December on `pull --extract` of a zip (the central directory fetched first,
the streams begun while the member list is checked, members written into the temporary
folder as their bytes arrive), on resumed partials whose front is in, and on `push
--keep-runs`. Each test states what a user relies on: the bytes and members staged are
Drive's, a rerun resumes instead of downloading again and recovers from whatever a killed
or misled run left, nothing stays behind in DEST, and no verified checkpoint on Drive goes
before its replacement is verified."""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import pytest
from click.testing import CliRunner

import drivestage
from drivestage import download as dl
from drivestage.cli import cli

from _archives import a_zip, tree
from _tmpfs import small_disk  # noqa: F401 (a fixture)

KiB = 1024


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter, for every test here."""


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _media(emulator) -> list:
    return [r for r in emulator.requests if r.method == "GET" and r.query.get("alt") == "media"]


def _served(emulator) -> int:
    """Media bytes the emulator sent (what a rerun really downloaded)."""
    return sum(r.bytes_out for r in _media(emulator))


def _leftovers(dest, *names) -> list:
    """What DEST holds besides the archive, its members' top folders and the state folder:
    partials, records, temporary folders."""
    return sorted(p for p in os.listdir(dest) if p not in (".drivestage", *names))


def _cd_entries(blob: bytes) -> list[int]:
    """Offsets of a zip's central directory headers."""
    out, at = [], blob.find(b"PK\x01\x02")
    while at >= 0:
        out.append(at)
        at = blob.find(b"PK\x01\x02", at + 46)
    return out


# ------------------------------------------------------------ a directory nothing verified

def _directory_claiming(blob: bytes, size: int) -> bytes:
    """``blob`` whose central directory says its first member inflates to ``size`` bytes."""
    out = bytearray(blob)
    struct.pack_into("<I", out, _cd_entries(blob)[0] + 24, size)
    return bytes(out)


def _lie_once_about_the_directory(lying: bytes):
    """A media answer carrying ``lying``'s bytes for the range asked (the first one: the
    zip's tail, where its directory is)."""
    from _proxy import Reply

    def mutate(status, headers, body):
        rng = {k.lower(): v for k, v in headers.items()}.get("content-range", "")
        first, last = (int(x) for x in rng.split()[1].split("/")[0].split("-"))
        return Reply(status, headers, [lying[first:last + 1]])
    return mutate


def test_a_directory_that_lied_once_about_sizes_does_not_fail_every_rerun(
        emulator, local_state, tmp_path, monkeypatch, small_disk):
    """The zip's tail (its central directory, fetched first and recorded in the partial
    at once) arrives altered once: a member claims 2 GiB, more than DEST's disk. The pull
    refuses before downloading the rest - from bytes nothing has verified. Before the fix
    the partial's record kept those bytes, so every rerun read the same lie and failed the
    same way, for good (only deleting the hidden partial by hand helped). Now the rerun
    fetches the directory again and stages the archive and every member."""
    from _proxy import Proxy

    members = {f"ds/p{i}.bin": os.urandom(96 * KiB) for i in range(6)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    disk = small_disk(4 << 20)
    dest = disk / "data"
    with Proxy(emulator.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
        proxy.on("GET", r"alt=media", _lie_once_about_the_directory(
            _directory_claiming(blob, 2 << 30)), times=1)
        code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q")
    assert code == 1 and "not enough free disk space to extract set.zip" in err, err
    assert not (dest / "ds").exists() and not (dest / "set.zip").exists()
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    emulator.clear_requests()
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q", "--json")
    assert code == 0, err
    assert tree(dest) == {"set.zip": blob, **members}
    assert _served(emulator) <= len(blob)  # nothing downloaded twice
    assert _leftovers(dest, "set.zip", "ds") == []
