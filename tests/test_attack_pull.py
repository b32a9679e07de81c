"""Attacks on the pull path of issues 10, 12 and 15 (a hostile user, a hostile server): the
partial and its record, the extraction that follows a download, stamps. Each test states
what a user relies on: the bytes staged are Drive's, nothing lands outside DEST or stays
behind in it, and every failure is one line."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import zipfile

import pytest
from click.testing import CliRunner

import drivestage
from drivestage import download as dl
from drivestage.cli import cli
from drivestage.partials import ranges_path


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter, for every test here."""


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def a_zip(members, method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def a_tgz(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tree(root) -> dict:
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".drivestage"]
        for name in files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = open(path, "rb").read()
    return out


MEMBERS = {f"ds/part{i}.bin": os.urandom(64 << 10) for i in range(6)}


# ------------------------------------------------------------------ the partial's record

@pytest.mark.parametrize("record", [b"[]", b"3", b'"x"', b"null", b'{"size": "1", "done": 5}',
                                    b'{"size": 0, "done": [[0, 1]]}', b"\xff\xfe garbage"],
                         ids=["list", "int", "str", "null", "wrong-types", "size-0", "binary"])
def test_a_malformed_ranges_record_starts_the_download_over(emulator, drive_env, tmp_path,
                                                           record):
    """A .ranges file that is not the record drivestage writes (a damaged disk, a hand edit)
    is ignored: the partial is not trusted, the pull succeeds with Drive's bytes."""
    blob = os.urandom(300_000)
    emulator.add_file("d/f.bin", blob)
    entry = drivestage.connect().resolve("d/f.bin")
    dest = tmp_path / "data"
    dest.mkdir()
    partial = dl.partial_path(str(dest / "f.bin"), entry)
    with open(partial, "wb") as fh:
        fh.write(b"\0" * 100_000)
    with open(ranges_path(partial), "wb") as fh:
        fh.write(record)
    code, out, err = run("pull", "drive:d/f.bin", str(dest), "-q", "--json")
    assert code == 0, err
    assert (dest / "f.bin").read_bytes() == blob
    assert json.loads(out)["fetched"] == len(blob)
    assert sorted(os.listdir(dest)) == [".drivestage", "f.bin"]
