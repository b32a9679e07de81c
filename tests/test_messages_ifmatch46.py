"""The troubleshooting entry of ifmatch46 (a removal refused with 412 because the item
changed since its check), made to happen through the CLI, PyDrive2 and the emulator over HTTP:
a lone permanent delete of ``push --delete``."""
from __future__ import annotations

import hashlib

from _checkpoints import md5
from _cli import run
from _drive_state import live_md5s
from _messages import renders, shown
from test_ifmatch46_deletes import CHANGED, _replaced_as_read, _stray


@renders("changed on Drive since it was checked … kept as it is now")
def test_push_delete_keeps_a_file_replaced_after_its_check(emulator, through, tmp_path):
    src, fid = _stray(emulator, tmp_path)
    other = b"another machine's new revision"
    through.on("GET", rf"/files/{fid}\?", _replaced_as_read(emulator, fid, other, batch=False))
    code, _, err = run("push", src, "drive:runs/b", "--delete", "--delete-permanently")
    assert code == 0, err
    said = [line for line in err.splitlines() if CHANGED in line]
    assert len(said) == 1 and "runs/b/stray.bin" in said[0], err
    shown("changed on Drive since it was checked … kept as it is now", said[0])
    assert "deleted stray.bin" not in err, err
    assert live_md5s(emulator, "runs/b") == {
        "keep.txt": [hashlib.md5(b"kept").hexdigest()], "stray.bin": [md5(other)]}
    assert emulator.read_bytes(fid) == other
