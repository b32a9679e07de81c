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
