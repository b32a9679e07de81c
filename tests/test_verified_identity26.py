"""A file already at the target of `pull drive:…/voc.zip DEST -x` (the user copied it there, or
a pull's stamp is gone) is adopted once its bytes match Drive's ("verified"), then extracted.
It was hashed by name, then extracted by name: a file renamed over it in between (another
program writing DEST) had its members merged into DEST under the verified md5, exit 0. The
extraction now reads the file whose bytes were verified, checked by its descriptor: the
other file is refused and nothing is merged (left by attackpull26, whose fix covers the other
ways an archive reaches its extraction).

A hook inside the process stands in for "another program" at that very moment: the call of
the extraction."""
from __future__ import annotations

import hashlib
import io
import os
import zipfile

from test_attack22_stage import _tree
from test_messages_walk20 import _drivestage

import drivestage.extract as extract_pkg

GOOD = {f"ds/m{i}.bin": bytes([65 + i]) * 300 for i in range(4)}
EVIL = {f"ds/m{i}.bin": bytes([97 + i]) * 300 for i in range(4)}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in members.items():
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def test_a_file_adopted_at_the_target_is_extracted_only_as_verified(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    good = _zip(GOOD)
    emulator.add_file("VOC/voc.zip", good)
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "voc.zip").write_bytes(good)          # there before any pull: no stamp
    evil = tmp_path / "evil.zip"
    evil.write_bytes(_zip(EVIL))
    real, calls = extract_pkg.extract, []

    def racing(*args, **kwargs):
        calls.append(1)
        os.replace(evil, dest / "voc.zip")        # renamed over it once it was verified
        return real(*args, **kwargs)
    monkeypatch.setattr(extract_pkg, "extract", racing)
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest), "-x", "-q")
    assert calls == [1]
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"Error: {dest / 'voc.zip'} changed while it was read"), r.output
    assert {k: v for k, v in _tree(dest).items() if k.startswith("ds/")} == {}
    # The rerun sees other bytes at the target, a file it did not stage: refused as before,
    # nothing replaced; put back, the pull stages it.
    monkeypatch.undo()
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    (dest / "voc.zip").write_bytes(good)
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    got = _tree(dest)
    assert {k: got[k] for k in GOOD} == GOOD
    assert hashlib.md5((dest / "voc.zip").read_bytes()).hexdigest() == \
        hashlib.md5(good).hexdigest()


def test_a_file_written_while_it_is_checked_is_not_adopted(emulator, drive_env, local_state,
                                                           tmp_path, monkeypatch):
    """The bytes hashed are those of one unchanged file: one written meanwhile (its mtime
    moved) is not taken for verified; the pull then says the file at the target is not its
    copy, and replaces nothing."""
    import drivestage.checksums as checksums

    good = _zip(GOOD)
    emulator.add_file("VOC/voc.zip", good)
    dest = tmp_path / "data"
    dest.mkdir()
    target = dest / "voc.zip"
    target.write_bytes(good)
    real = checksums._digest_of

    def written_meanwhile(fh, name):
        got = real(fh, name)
        os.utime(target, ns=(1, 1))
        return got
    monkeypatch.setattr(checksums, "_digest_of", written_meanwhile)
    r = _drivestage("pull", "drive:VOC/voc.zip", str(dest), "-x", "-q")
    assert r.exit_code == 1, r.output
    assert "is already there and is not a copy of drive:VOC/voc.zip" in r.output, r.output
    assert target.read_bytes() == good and not (dest / "ds").exists()
