"""Messages stage22 added (see docs/troubleshooting.md and tests/_messages.py)."""
from __future__ import annotations

from _messages import renders, shown
from test_messages_walk20 import _drivestage
from test_stage22 import V1, V2, _replace_on_drive, _zip


@renders("that the new version lacks, because … changed since drivestage extracted")
def test_an_update_that_keeps_an_edited_member(emulator, drive_env, local_state, tmp_path):
    emulator.add_file("VOC_datasets/v.zip", _zip(V1))
    dest = tmp_path / "data"
    assert _drivestage("pull", "drive:VOC_datasets/v.zip", str(dest), "-x").exit_code == 0
    (dest / "ds/e1.txt").write_bytes(b"my labels")
    _replace_on_drive("VOC_datasets/v.zip", _zip(V2), tmp_path)
    r = _drivestage("pull", "drive:VOC_datasets/v.zip", str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    shown("that the new version lacks, because … changed since drivestage extracted", r.stderr)
    assert (dest / "ds/e1.txt").read_bytes() == b"my labels"


@renders("changed while it was read (another program writes it?)")
def test_a_local_archive_written_while_it_is_extracted(local_state, tmp_path, monkeypatch):
    """A local archive is extracted where it lies; one written meanwhile (a copy into the
    input folder not finished) is not called staged."""
    import os

    from _messages import error_line
    from test_stage22 import _members

    inputs = tmp_path / "input"
    inputs.mkdir()
    archive = inputs / "voc.zip"
    data = _zip(_members())
    archive.write_bytes(data)
    import drivestage.hashed_pass as hashed_pass

    real = hashed_pass._Reader._block

    def read_then_written(self, offset: int) -> bytes:
        block = real(self, offset)
        if block:
            with open(archive, "r+b") as fh:   # the same bytes, written again: a new ctime
                fh.write(data)
        return block

    # Written while the pull reads it (hashing it as it extracts it: original25).
    monkeypatch.setattr(hashed_pass._Reader, "_block", read_then_written)
    dest = tmp_path / "data"
    r = _drivestage("pull", str(archive), str(dest), "-x", "-q")
    assert r.exit_code == 1, r.output
    line = error_line(r.stderr)
    shown("changed while it was read (another program writes it?)", line)
    assert line == (f"Error: {archive} changed while it was read (another program writes "
                    f"it?); nothing of it is staged in {dest} as extracted: run the same "
                    "command again once it is complete")
    monkeypatch.undo()
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    r = _drivestage("pull", str(archive), str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(dest)) == [".drivestage", "ds"]
