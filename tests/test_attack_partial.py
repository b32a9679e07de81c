"""Attacks on the partial download in DEST by someone who can write DEST.

The download writes and hashes its partial file through its own descriptor. Two others open
it by name: the extraction that follows the download (``pull --extract`` of a zip or tar), and
the rename that gives the verified file its final name. A file put at the partial's name in
between must neither be extracted nor staged as verified (``drivestage.extract.overlapped.
open_followed``, ``drivestage.download.Download._check_moved``).
"""
from __future__ import annotations

import gzip
import os

import pytest
from click.testing import CliRunner

from _archives import a_tgz, tree
from drivestage.cli import cli
from drivestage.extract.overlapped import Overlapped
from test_messages_paths import a_zip

REAL = {"ds/a.txt": b"alpha", "ds/b.txt": b"beta"}
EVIL = {"ds/evil.txt": b"not from Drive", "ds/a.txt": b"changed"}


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI on the emulator, fast retries."""


def a_tar(members: dict[str, bytes]) -> bytes:
    return gzip.decompress(a_tgz(members))


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_a_file_put_at_the_partials_name_while_the_follower_opens_it_is_not_extracted(
        emulator, tmp_path, monkeypatch, kind):
    """The swap lasts only while the follower opens the partial (and reads a zip's member
    list); the real partial is back before the download goes on, so the download verifies.
    The follower must not have taken the other file: DEST gets Drive's members only."""
    make = a_zip if kind == "zip" else a_tar
    # (A zip's follower opens the partial in open_zip, before the tail is fetched: overlap41;
    # its member list is read later through that descriptor.)
    start = "open_zip" if kind == "zip" else kind
    real_start = getattr(Overlapped, start)
    swapped = []

    def start_during_a_swap(cls, path, *args, **kwargs):
        os.rename(path, path + ".real")  # another program, for a moment
        with open(path, "wb") as fh:
            fh.write(make(EVIL))
        try:
            return real_start(path, *args, **kwargs)
        finally:
            os.replace(path + ".real", path)
            swapped.append(path)

    monkeypatch.setattr(Overlapped, start, classmethod(start_during_a_swap))
    blob = make(REAL)
    emulator.add_file(f"d/set.{kind}", blob)
    dest = tmp_path / "data"
    got = CliRunner().invoke(cli, ["pull", f"drive:d/set.{kind}", str(dest), "-x", "-q"])
    assert got.exit_code == 0, got.stderr
    assert swapped
    assert tree(dest) == {f"set.{kind}": blob, **REAL}
