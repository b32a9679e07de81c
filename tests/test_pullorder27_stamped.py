"""A pull reports success only for the bytes it verified. Another program's file of the same
size renamed over DEST's copy after the pull verified it (downloaded, or found there and
hashed) and before the pull ended: `pull drive:…/voc.zip DEST` (no -x) said it staged the
copy, exit 0, while DEST held the other file; with the verified file's mtime, every rerun
said `already staged` and never looked at its bytes (the stamp gap of attackz26). Now the
pull checks that the file at the target is still the one verified once its stamp is
written: else one line, exit 1, and a stamp that describes no file (the rerun checks the
file there by its md5, and downloads it again).

A hook inside the process stands in for "another program" at that very moment, as in
test_attackz26_adopted."""
from __future__ import annotations

import hashlib
import os

from _messages import error_line
from test_messages_walk20 import _drivestage
from test_verified_identity26 import EVIL, GOOD, _zip

import drivestage.download as dl

_LINE = ("Error: {target} changed while it was read (another program writes it?): it is not "
         "the copy of drive:VOC/voc.zip verified against Drive; run the pull again (it checks "
         "the file there, and downloads it again if its bytes differ)")


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _rename_over(evil, target) -> None:
    """Another program's file, of the same size and mtime, renamed over ``target``."""
    st = os.stat(target)
    os.utime(evil, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(evil, target)


def test_a_file_renamed_over_a_download_fails_the_pull_and_the_rerun_fetches_it(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    from drivestage.unpack import Unpacking

    good, evil_bytes = _zip(GOOD), _zip(EVIL)
    assert len(good) == len(evil_bytes)
    emulator.add_file("VOC/voc.zip", good)
    dest = tmp_path / "data"
    target = dest / "voc.zip"
    evil = tmp_path / "evil.zip"
    evil.write_bytes(evil_bytes)
    real = Unpacking.download

    def racing(self):
        got = real(self)
        _rename_over(evil, target)                # once it was verified and in place
        return got
    monkeypatch.setattr(Unpacking, "download", racing)
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest), "-q")
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == _LINE.format(target=target)
    monkeypatch.setattr(Unpacking, "download", real)
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest))
    assert r.exit_code == 0, r.output
    assert "already staged" not in r.output, r.output
    assert _md5(target) == hashlib.md5(good).hexdigest()
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest))
    assert r.exit_code == 0 and "already staged" in r.output, r.output


def test_a_file_renamed_over_the_one_found_and_verified_fails_the_pull(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    """The file already at the target (no stamp) is hashed and adopted: `verified`."""
    good, evil_bytes = _zip(GOOD), _zip(EVIL)
    emulator.add_file("VOC/voc.zip", good)
    dest = tmp_path / "data"
    dest.mkdir()
    target = dest / "voc.zip"
    target.write_bytes(good)
    evil = tmp_path / "evil.zip"
    evil.write_bytes(evil_bytes)
    real, calls = dl.verify_held, []

    def racing(path, entry):
        got = real(path, entry)
        if not calls:
            calls.append(1)
            _rename_over(evil, target)            # once it was verified
        return got
    monkeypatch.setattr(dl, "verify_held", racing)
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest), "-q")
    assert calls == [1]
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == _LINE.format(target=target)
    monkeypatch.setattr(dl, "verify_held", real)
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest))
    assert r.exit_code == 0, r.output
    assert "already staged" not in r.output, r.output
    assert _md5(target) == hashlib.md5(good).hexdigest()
