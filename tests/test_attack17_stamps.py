"""Attacks on how a folder pull (and a single-file pull) finds a file's stamps and a killed
run's leftovers: the one listing per folder a folder pull takes at its start
(:func:`drivestage.partials.listed_once`), each file's own stamp read by name
(:func:`drivestage.stamps.own`), concurrent pulls into one DEST, and remote names that look
like drivestage's own files. Against the emulator, through the real stack."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time

import pytest

import drivestage
from drivestage import localfs, temps

from _archives import a_tar
from _cli import child_env, run

_ALL = os.environ.get("DRIVESTAGE_TEST_SWEEP") == "all"


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter, for every test here."""


def media(emulator) -> list:
    return [r for r in emulator.requests if r.query.get("alt") == "media"]


def a_new_process(monkeypatch) -> None:
    """What a rerun in a new process starts with: no folder swept yet (the sweep of a
    folder's dead temporary files runs at most once a minute per process)."""
    monkeypatch.setattr(localfs, "_swept", {})


def leftovers(root) -> list[str]:
    """drivestage's own files left in the folders below ``root`` (partials, records, their
    temporary files, extraction folders), outside the state folders."""
    out = []
    for where, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".drivestage"]
        out += [os.path.join(where, n) for n in files + dirs
                if n.endswith((".partial", ".ranges", ".tmp")) or n.startswith(".drivestage-")]
    return out


# --- names that look like drivestage's own ------------------------------------------------

def _foreign_tmp_name(stem: str) -> str:
    """A name of the form of an atomic write's temporary file, of another pid namespace."""
    other = "0badcafe" if temps.namespace_tag() != "0badcafe" else "0badcaff"
    return f".{stem}.{other}-12345.a1b2c3.tmp"


def test_an_archive_member_named_like_a_temporary_file_stays_after_the_next_download(
        emulator, drive_env, tmp_path, monkeypatch):
    """An archive member named as an atomic write's temporary file of another machine
    (``.x.<8 hex>-<pid>.<6 hex>.tmp``) keeps its mtime from the archive (here 1970). The
    next download into that folder writes its range record atomically, which swept the
    folder for dead processes' temporary files: the member was removed right after a pull
    that reported success, and every rerun extracted it again."""
    member = _foreign_tmp_name("notes")
    emulator.add_file("ds/a.tar", a_tar({member: b"mine", "keep.txt": b"keep"}))
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:ds", str(dest), "--extract", "-q")
    assert code == 0, err
    assert (dest / "ds" / member).read_bytes() == b"mine"
    emulator.add_file("ds/b.bin", b"b" * 1000)
    a_new_process(monkeypatch)
    code, out, err = run("pull", "drive:ds", str(dest), "--extract", "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"cached": 1, "download": 1}
    assert (dest / "ds" / member).read_bytes() == b"mine"
    assert (dest / "ds" / "b.bin").read_bytes() == b"b" * 1000


def test_a_drive_file_named_like_a_temporary_file_stays_staged_a_day_later(
        emulator, drive_env, tmp_path, monkeypatch):
    """The same for a Drive file of such a name: once its copy is a day old, the next
    download into its folder removed it, after a pull that said every file is staged."""
    name = _foreign_tmp_name("weights")
    emulator.add_file(f"ds/{name}", b"w" * 100)
    dest = tmp_path / "data"
    assert run("pull", "drive:ds", str(dest), "-q")[0] == 0
    staged = dest / "ds" / name
    old = time.time() - temps.FOREIGN_STALE_S - 60  # a day on
    os.utime(staged, (old, old))
    emulator.add_file("ds/c.bin", b"c" * 1000)
    a_new_process(monkeypatch)
    # One file at a time: the copy is checked (its mtime is not the stamp's), then c.bin.
    code, out, err = run("pull", "drive:ds", str(dest), "-j", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["actions"] == {"verified": 1, "download": 1}
    assert staged.read_bytes() == b"w" * 100
    emulator.clear_requests()
    code, out, err = run("pull", "drive:ds", str(dest), "--json")
    assert code == 0, err
    assert set(json.loads(out)["actions"]) == {"cached"}
    assert media(emulator) == []
