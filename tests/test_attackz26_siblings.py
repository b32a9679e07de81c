"""A member counted in place because another archive of the same Drive folder extracted it
(test_two_archives26) must be what an archive on Drive now says: a sibling archive deleted
from Drive, or updated to a version without that path, leaves a stamp in DEST that still
lists the path; its bytes are no current archive's, and `pull drive:src DEST -x` said the
archive that holds the path was already staged for good (attackz26)."""
from __future__ import annotations

import os

from test_attack15_extract import _replace_on_drive
from test_messages_walk20 import _drivestage
from test_two_archives26 import A, B, _members, _zip


def _b_merged_last(emulator, dest) -> str:
    """a.zip staged, then b.zip added and staged: b's `ds/x` holds the path."""
    emulator.add_file("src/a.zip", _zip(A))
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    b_id = emulator.add_file("src/b.zip", _zip(B))
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    assert _members(dest)["src/ds/x"][0] == b"bb"
    return b_id


def test_a_sibling_deleted_from_drive_no_longer_stands_for_a_shared_path(
        emulator, drive_env, local_state, tmp_path):
    dest = tmp_path / "d"
    b_id = _b_merged_last(emulator, dest)
    emulator.store.delete(b_id)
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    assert _members(dest)["src/ds/x"][0] == b"aaaa", r.output
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0 and "1 file (1 already staged)" in r.output, r.output


def test_a_sibling_updated_without_the_shared_path_no_longer_stands_for_it(
        emulator, drive_env, local_state, tmp_path):
    dest = tmp_path / "d"
    _b_merged_last(emulator, dest)
    _replace_on_drive("src/b.zip", _zip({"ds/b": b"b2"}), tmp_path)
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    got = _members(dest)
    assert got["src/ds/b"][0] == b"b2"
    assert got["src/ds/x"][0] == b"aaaa", r.output
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0 and "2 files (2 already staged)" in r.output, r.output
