"""Archive members' times and `pull --force -x` against a hostile archive, a hostile file
system and an interrupted run (attackds30).

A tar member's mtime is whatever the archive says: a pax header may say ``mtime=1e30``
(a broken or hostile archive; GNU tar extracts it with a warning). ``os.utime`` refused it
with an OverflowError that escaped the pull as a traceback, the archive half extracted."""
from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from _archives import tree
from _cli import run

DATA = {"ds/a.txt": b"alpha", "ds/b.txt": b"bravo"}


def _tar(times: dict[str, float], compressed: bool) -> bytes:
    """A pax tar of DATA and its folder ``ds``, each with the mtime in ``times`` (else 1e9)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if compressed else "w",
                      format=tarfile.PAX_FORMAT) as tf:
        folder = tarfile.TarInfo("ds")
        folder.type, folder.mtime = tarfile.DIRTYPE, times.get("ds", 1e9)
        tf.addfile(folder)
        for name, data in DATA.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), times.get(name, 1e9)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("compressed", [False, True], ids=["tar", "tgz"])
def test_a_member_time_no_file_can_have_is_left_at_the_time_of_writing(
        emulator, local_state, drive_env, fast_retries, tmp_path, compressed):
    name = "set.tgz" if compressed else "set.tar"
    blob = _tar({"ds/a.txt": 1e30, "ds": -1e30}, compressed)
    emulator.add_file(f"d/{name}", blob)
    dest = tmp_path / "data"

    code, out, err = run("pull", f"drive:d/{name}", str(dest), "-x", "--json")

    assert code == 0, err   # was an OverflowError traceback
    assert tree(dest) == {name: blob, **DATA}
    assert os.stat(dest / "ds/b.txt").st_mtime == 1e9   # the times a file can have, kept
    code, out, err = run("pull", f"drive:d/{name}", str(dest), "-x", "--json")
    assert (code, json.loads(out)["action"]) == (0, "cached"), err


def test_force_of_a_local_archive_it_staged_says_extracted_not_updated(local_state, tmp_path):
    """`pull ./set.zip DEST -x --force` of the very archive staged: it said `updated and md5
    verified` (`"action": "update"`), as for another version of the archive; from Drive the
    same `--force` says `downloaded`. Another version still says `updated`."""
    archive = tmp_path / "set.tar"
    archive.write_bytes(_tar({}, False))
    dest = tmp_path / "d"
    code, out, err = run("pull", str(archive), str(dest), "-x")
    assert code == 0, err

    code, out, err = run("pull", str(archive), str(dest), "-x", "--force")

    assert code == 0, err
    assert ": extracted and md5 verified (" in err and ", 3 members extracted, " in err, err
    archive.write_bytes(_tar({"ds/a.txt": 2e9}, False))   # another version
    code, out, err = run("pull", str(archive), str(dest), "-x", "--json")
    assert (code, json.loads(out)["action"]) == (0, "update"), err
