"""attackpull34: a Drive file whose name holds a line break or another control character.

Drive takes such titles; the emulator put the title in its download's
``Content-Disposition`` as it was, so a line break ended that header and what followed was
read as headers of their own: the answer lost its ``Content-Range``, and every pull of the
file failed after its retries (``unexpected Content-Range None``).
"""
from __future__ import annotations

import os

import pytest

from _cli import run


@pytest.mark.parametrize("name", ["w\nx.pth", "tab\there\r.bin", "bell\x07\x7f.bin"])
def test_a_file_named_with_a_control_character_is_pulled(emulator, drive_env, local_state,
                                                         fast_retries, tmp_path, name):
    data = os.urandom(3000)
    emulator.add_file(f"Models/{name}", data)
    code, out, err = run("pull", f"drive:Models/{name}", str(tmp_path / "d"), "-q")
    assert code == 0, err
    assert (tmp_path / "d" / name).read_bytes() == data
