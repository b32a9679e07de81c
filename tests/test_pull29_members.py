"""A member of a staged archive changed in DEST with its size kept (pull29). A rerun judged
members by presence, kind and size only: a member rewritten since its extraction (an edit,
a file truncated and written again, a hard link to another file put in its place) was
`already staged` for good, though its mtime said it was no longer what the extraction
wrote; and `pull --force -x`, the documented way out for a change no rerun can see (the
member's mtime set back), kept every member whose size, mtime and inode were the records',
so a member edited in place with its time restored kept its other bytes even then."""
from __future__ import annotations

import json
import os

import pytest

from _archives import a_fixed_zip as a_zip, tree
from _cli import run, summed

DATA = {"ds/a.txt": b"alpha", "ds/b.txt": b"bravo", "ds/sub/c.txt": b"gamma"}


@pytest.fixture
def staged(emulator, local_state, drive_env, fast_retries, tmp_path):
    """DEST with set.zip pulled and extracted; returns (dest, the archive's bytes)."""
    blob = a_zip(DATA)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    assert _pull(str(dest))["action"] == "download"
    emulator.clear_requests()
    return dest, blob


def _pull(dest: str, *more: str) -> dict:
    code, out, err = run("pull", "drive:d/set.zip", dest, "-x", "--json", *more)
    assert code == 0, err
    return json.loads(out)


def _rewrite(path, how: str, outside) -> None:
    if how == "edited":
        path.write_bytes(b"ALPHA")
    elif how == "truncated":   # cut, then written out to its size again (zeros)
        os.truncate(path, 0)
        os.truncate(path, 5)
    else:                      # another file of the same size linked in its place
        outside.write_bytes(b"OTHER")
        os.unlink(path)
        os.link(outside, path)


@pytest.mark.parametrize("how", ["edited", "truncated", "linked"])
def test_a_member_rewritten_with_its_size_is_put_back(staged, emulator, tmp_path, how):
    dest, blob = staged
    _rewrite(dest / "ds/a.txt", how, tmp_path / "outside")
    kept = os.stat(dest / "ds/b.txt").st_ino

    code, _, err = run("pull", "drive:d/set.zip", str(dest), "-x")

    assert code == 0, err
    # Was "already staged (…, 3 members already staged, …)" over the other bytes.
    assert f": extracted (321 B, {summed(blob)}" in err and \
        ", 1 member extracted, 2 already staged, " in err, err
    assert "put back 1 member of drive:d/set.zip that changed since drivestage extracted " \
        "it: ds/a.txt\n" in err, err
    assert dict(emulator.api_calls()) == {"files.get": 1}   # from the archive in DEST
    assert tree(dest) == {"set.zip": blob, **DATA}
    assert os.stat(dest / "ds/b.txt").st_ino == kept          # the others not written
    if how == "linked":
        assert (tmp_path / "outside").read_bytes() == b"OTHER"  # written beside, not through
    assert _pull(str(dest))["action"] == "cached"


def test_force_writes_again_a_member_whose_time_was_set_back(staged, emulator):
    """What no rerun can see (the same size, the mtime set back: `touch -r`, `cp -p`) is
    taken for the staged member, as documented; `--force` must put Drive's bytes back."""
    dest, blob = staged
    member = dest / "ds/a.txt"
    st = os.stat(member)
    with open(member, "r+b") as fh:    # edited in place: the inode stays
        fh.write(b"ALPHA")
    os.utime(member, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _pull(str(dest))["action"] == "cached"

    again = _pull(str(dest), "--force")

    assert again["action"] == "download"
    assert again["members_kept"] == 0       # was 3: ds/a.txt kept with its other bytes
    assert tree(dest) == {"set.zip": blob, **DATA}
    assert _pull(str(dest))["action"] == "cached"


def test_an_archive_verified_anew_writes_only_the_changed_member(staged, emulator):
    """The archive shown with another mtime (hashed, its md5 Drive's) and a member changed:
    the others stay (all were written again once a member was found changed; before, the
    changed one was kept with the others: `already there, md5 verified (…, 3 members
    already staged, …)`)."""
    dest, blob = staged
    os.utime(dest / "set.zip", ns=(10**18, 10**18))       # a time of its own, same bytes
    (dest / "ds/a.txt").write_bytes(b"ALPHA")
    kept = os.stat(dest / "ds/b.txt").st_ino

    code, _, err = run("pull", "drive:d/set.zip", str(dest), "-x")

    assert code == 0, err
    name = summed(blob).split()[0]
    assert f": already there, {name} verified (321 B, {summed(blob)}" in err and \
        ", 1 member extracted, 2 already staged, " in err, err
    assert dict(emulator.api_calls()) == {"files.get": 1}
    assert tree(dest) == {"set.zip": blob, **DATA}
    assert os.stat(dest / "ds/b.txt").st_ino == kept
    assert _pull(str(dest))["action"] == "cached"
