"""attackpull35: a folder that another program made at the name of a pull's partial
download or of its record (``.w.bin.<key>.partial``, ``.ranges``: names drivestage keeps) made
the pull say ``cannot stage …: Is a directory (…partial)``, exit 1, naming a file the user
never made and nothing to do. It says what the name is and what to do now."""
from __future__ import annotations

import os

import pytest

import drivestage
from _cli import run
from drivestage.partials import partial_path, ranges_path


@pytest.mark.parametrize("which", ["partial", "record"])
def test_a_folder_at_a_partial_downloads_name_is_said_so(emulator, drive_env, local_state,
                                                         tmp_path, which):
    data = os.urandom(3000)
    emulator.add_file("d/w.bin", data)
    dest = tmp_path / "dest"
    partial = partial_path(str(dest / "w.bin"), drivestage.connect().resolve("d/w.bin"))
    there = partial if which == "partial" else ranges_path(partial)
    os.makedirs(os.path.join(there, "x"))

    code, _, err = run("pull", "drive:d/w.bin", str(dest))

    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"Error: cannot stage drive:d/w.bin into {dest}: {there} is a folder, at a name "
        "drivestage keeps for a partial download (another program made it there); move it "
        "away and pull again")
    assert os.path.isdir(os.path.join(there, "x"))   # nothing of it removed
    os.rename(there, str(tmp_path / "moved"))
    assert run("pull", "drive:d/w.bin", str(dest))[0] == 0
    assert (dest / "w.bin").read_bytes() == data
