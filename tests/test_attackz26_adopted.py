"""A file already at the target of `pull drive:…/voc.zip DEST -x` is adopted once its bytes
match Drive's, and its stamp says which file that is (its size and mtime). The stamp took the
mtime of whatever was at the target a moment after the check, by name: a file of the same
size renamed over it in between (another program writing DEST) was refused by that pull
(`changed while it was read`), but its stamp now described the other file, and the rerun took
it for the staged copy and merged its members into DEST unverified, exit 0 (attackz26). The
stamp describes the file whose bytes were verified now.

A hook inside the process stands in for "another program" at that very moment: right after
the check."""
from __future__ import annotations

import hashlib
import os

from test_attack22_stage import _tree
from test_messages_walk20 import _drivestage
from test_verified_identity26 import EVIL, GOOD, _zip

import drivestage.download as dl


def test_a_file_renamed_over_the_verified_one_is_never_taken_for_the_staged_copy(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    good, evil_bytes = _zip(GOOD), _zip(EVIL)
    assert len(good) == len(evil_bytes)
    emulator.add_file("VOC/voc.zip", good)
    dest = tmp_path / "data"
    dest.mkdir()
    target = dest / "voc.zip"
    target.write_bytes(good)                      # there before any pull: no stamp
    evil = tmp_path / "evil.zip"
    evil.write_bytes(evil_bytes)
    os.utime(evil, ns=(1_600_000_000_000_000_000,) * 2)
    real, calls = dl.verify_held, []

    def racing(path, entry):
        got = real(path, entry)
        if not calls:
            calls.append(1)
            os.replace(evil, target)              # renamed over it once it was verified
        return got
    monkeypatch.setattr(dl, "verify_held", racing)
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest), "-x", "-q")
    assert calls == [1]
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"Error: {target} changed while it was read"), r.output
    assert {k: v for k, v in _tree(dest).items() if k.startswith("ds/")} == {}
    # The rerun: the file at the target is not the one verified; never its members.
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest), "-x", "-q")
    got = _tree(dest)
    assert not any(got.get(k) == v for k, v in EVIL.items()), r.output
    # (The target has a stamp of this pull's, and other bytes: fetched anew, then staged.)
    assert r.exit_code == 0, r.output
    assert {k: got[k] for k in GOOD} == GOOD
    assert hashlib.md5(target.read_bytes()).hexdigest() == hashlib.md5(good).hexdigest()


def test_a_file_renamed_over_a_download_is_never_taken_for_the_staged_copy(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    """The same for a download: the stamp took the mtime of the file at the target after
    the download was renamed into place and checked; one renamed over it in between was
    `already staged` for good (`pull` without -x), its bytes never Drive's. (That first pull
    fails now: tests/test_pullorder27_stamped.py.)"""
    from drivestage.unpack import Unpacking

    good, evil_bytes = _zip(GOOD), _zip(EVIL)
    emulator.add_file("VOC/voc.zip", good)
    dest = tmp_path / "data"
    target = dest / "voc.zip"
    evil = tmp_path / "evil.zip"
    evil.write_bytes(evil_bytes)
    os.utime(evil, ns=(1_600_000_000_000_000_000,) * 2)
    real = Unpacking.download

    def racing(self):
        got = real(self)
        os.replace(evil, target)                  # renamed over it once it was verified
        return got
    monkeypatch.setattr(Unpacking, "download", racing)
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest), "-q")
    # (It said it staged the copy, exit 0, until pullorder27: test_pullorder27_stamped.)
    assert r.exit_code == 1 and "changed while it was read" in r.output, r.output
    monkeypatch.setattr(Unpacking, "download", real)
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest))
    assert r.exit_code == 0, r.output
    assert "already staged" not in r.output, r.output
    assert hashlib.md5(target.read_bytes()).hexdigest() == hashlib.md5(good).hexdigest()
