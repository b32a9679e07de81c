"""Messages attack22stage added (see docs/troubleshooting.md and tests/_messages.py)."""
from __future__ import annotations

from _messages import error_line, renders, shown
from test_attack22_stage import _pull, _setup


@renders("a lock file of drivestage, is a link, a folder or another user's file")
def test_a_lock_file_that_is_a_folder(local_state, tmp_path):
    archive, dest = _setup(tmp_path)
    assert _pull(archive, dest).exit_code == 0
    (dest / ".drivestage" / "voc.zip.lock").mkdir()
    (dest / "ds/m1.bin").unlink()
    r = _pull(archive, dest)
    assert r.exit_code == 1, r.output
    shown("a lock file of drivestage, is a link, a folder or another user's file",
          error_line(r.stderr))
    # The way out the line gives works: remove that entry, pull again.
    (dest / ".drivestage" / "voc.zip.lock").rmdir()
    assert _pull(archive, dest).exit_code == 0
    assert (dest / "ds/m1.bin").exists()


@renders("extracted from another file named … is extracted beside them and they stay")
def test_a_local_original_beside_another_files_members(emulator, drive_env, local_state,
                                                       tmp_path):
    from test_attack22_stage import V1, _drivestage, _zip

    emulator.add_file("VOC_datasets/voc.zip", _zip(V1))
    dest = tmp_path / "data"
    assert _drivestage("pull", "drive:VOC_datasets/voc.zip", str(dest), "-x", "-q"
                       ).exit_code == 0
    (tmp_path / "input").mkdir()
    local = tmp_path / "input" / "voc.zip"
    local.write_bytes(_zip({"ds/new.bin": b"new"}))
    r = _pull(local, dest)
    assert r.exit_code == 0, r.output
    shown("extracted from another file named … is extracted beside them and they stay",
          r.stderr)
