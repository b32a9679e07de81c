"""Attacks on the day's changes: a stamp's hand-edited ``access`` (keys that are wrong,
stale, huge, not keys or not text), ..."""
from __future__ import annotations

import glob
import json
import os

import pytest
from click.testing import CliRunner

from drivestage.cli import cli
from drivestage.drive.resources import ResourceKeys

TEACHER = "teacher@school.edu"
KEYS = "X-Goog-Drive-Resource-Keys"


def pull(*args):
    result = CliRunner().invoke(cli, ["pull", *args, "-q", "--json"], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _edit_stamp(dest, **fields):
    (path,) = glob.glob(os.path.join(dest, ".drivestage", "*.json"))
    with open(path) as fh:
        stamp = json.load(fh)
    stamp.update(fields)
    with open(path, "w") as fh:
        json.dump(stamp, fh)
    return path


def _keyed(emulator):
    folder = emulator.add_folder("Course", owner=TEACHER, resource_key="0-folderKEY")
    fid = emulator.add_file("Course/x.bin", b"x" * 1000, owner=TEACHER)
    return folder, fid


@pytest.mark.parametrize("access", [
    "{other}/0-otherKEY",                       # a key for another file
    "{other}/0-otherKEY,{fid}/0-wrongKEY",      # and a wrong one for the file itself
    "{folder}/0-staleKEY",                      # the folder's key before the owner rotated it
])
def test_a_stamp_with_a_wrong_access_chain_still_downloads(emulator, local_state, drive_env,
                                                             tmp_path, access):
    """The rerun must find the file by its path and download it (the local copy deleted);
    the stamp then holds the right chain again, so a third run is one call."""
    folder, fid = _keyed(emulator)
    other = emulator.add_folder("Other", owner=TEACHER, resource_key="0-otherKEY")
    src, dest = f"drive:id:{folder}:0-folderKEY/x.bin", str(tmp_path / "d")
    assert pull(src, dest)[0] == 0
    _edit_stamp(dest, access=access.format(other=other, fid=fid, folder=folder))
    os.remove(os.path.join(dest, "x.bin"))
    code, out, err = pull(src, dest)
    assert code == 0, err
    assert (tmp_path / "d" / "x.bin").read_bytes() == b"x" * 1000
    emulator.clear_requests()
    code, out, err = pull(src, dest)
    assert code == 0, err
    assert json.loads(out)["api_calls"] == 1
    assert [(r.kind, r.status, r.headers.get(KEYS)) for r in emulator.requests] == \
        [("files.get", 200, f"{folder}/0-folderKEY")]


@pytest.mark.parametrize("access", [
    "a/b\r\nX-Evil: 1", "a/b\nX-Evil: 1", "\u00e9/\u00e9", "a/b/c", "/", ",,,,", "",
    "A" * 100_000 + "/" + "B" * 100_000, ",".join(f"i{n}/k{n}" for n in range(50_000)),
    "x" * 5_000_000,
])
def test_a_hostile_access_never_reaches_a_header(emulator, local_state, drive_env, tmp_path,
                                                 access):
    """A stamp's ``access`` edited by hand: nothing but short plain ``id/key`` pairs is ever
    sent, nothing hangs, and the rerun is still right (found by its path)."""
    folder, fid = _keyed(emulator)
    src, dest = f"drive:id:{folder}:0-folderKEY/x.bin", str(tmp_path / "d")
    assert pull(src, dest)[0] == 0
    _edit_stamp(dest, access=access)
    emulator.clear_requests()
    code, out, err = pull(src, dest)
    assert code == 0, err
    assert json.loads(out)["action"] == "cached"
    for r in emulator.requests:
        header = r.headers.get(KEYS) or ""
        assert len(header) < 1000 and "\n" not in header and "\r" not in header
        assert "X-Evil" not in header


@pytest.mark.parametrize("access", [None, 12, ["a/b"], {"a": "b"}])
def test_an_access_of_another_type_or_none_is_a_plain_rerun(emulator, local_state, drive_env,
                                                            tmp_path, access):
    """A stamp from before the change (no ``access``), or one edited to a non-string."""
    folder, fid = _keyed(emulator)
    src, dest = f"drive:id:{folder}:0-folderKEY/x.bin", str(tmp_path / "d")
    assert pull(src, dest)[0] == 0
    path = _edit_stamp(dest, access=access)
    if access is None:
        with open(path) as fh:
            stamp = json.load(fh)
        del stamp["access"]
        with open(path, "w") as fh:
            json.dump(stamp, fh)
    code, out, err = pull(src, dest)
    assert code == 0, err
    assert json.loads(out)["action"] == "cached"
    emulator.clear_requests()
    code, out, err = pull(src, dest)
    assert json.loads(out)["api_calls"] == 1


def test_restore_keeps_only_short_plain_pairs():
    keys = ResourceKeys()
    keys.restore("F", "G/" + "k" * 5000 + ",H/0-hKEY," + ",".join(f"i{n}/k" for n in range(10**5)))
    pairs = keys.chain("F").split(",")
    assert pairs[0] == "H/0-hKEY" and len(pairs) <= 64
    keys.learn("S", "0-" + "s" * 300)       # a server's listing: as long a key is not kept
    assert keys.key("S") is None
    keys.restore(["not", "an id"], "H/0-hKEY")   # type: ignore[arg-type]


def test_restore_does_not_override_a_key_learnt_in_this_run():
    keys = ResourceKeys()
    keys.learn("D", "0-freshKEY")
    keys.learn("F", via="D")
    keys.restore("F", "D/0-staleKEY")
    assert keys.chain("F") == "D/0-freshKEY"
    keys2 = ResourceKeys()
    keys2.restore("F", "OTHER/0-oKEY")
    keys2.learn("D", "0-dKEY")
    keys2.learn("F", via="D")      # this run's listing wins over a stamp's guess
    assert keys2.chain("F") == "D/0-dKEY"
