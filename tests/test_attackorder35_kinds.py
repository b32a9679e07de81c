"""A Drive item of a folder pull and an archive member of another kind at one path: a
folder on Drive where `a.zip` holds the file `ds/x`, or the file `ds/x` on Drive where
`a.zip` holds the folder `ds/x/` (its member `ds/x/y`). The two can never both be
staged; the pull says so, naming both, before a byte moves, and keeps saying it.

Before (attackorder35): a folder added on Drive got "…/ds/x is a file where the folder pull
needs a folder (Drive has a folder of that name); move the file away and run again", and
once moved the rerun extracted the member again and said it again, for good; a file added
got "…/ds/x is a folder; … Move the folder away", and once moved the archive was refused at
every rerun. A first pull with the folder said "move that folder away" (the folder Drive
has) or, with -j 1, "move the file away" (the member it had just extracted)."""
from __future__ import annotations

import os

import pytest

import _cli
from _envs import env_emulator  # noqa: F401  (a fixture)
from test_attack22_stage import _tree
from test_chunkdet35_order import BIG, _zip


def _refused_twice(env, dest, expected: str, *options: str) -> None:
    before = _tree(dest)
    env.clear_requests()
    for extra in [(), ("--force",)]:
        code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", *options, *extra)
        assert (code, err.strip()) == (1, expected), err
        assert _tree(dest) == before                  # nothing written
    assert not [r for r in env.requests if r.query.get("alt") == "media"]   # nor fetched


@pytest.mark.parametrize("moved", [False, True])
def test_a_folder_added_where_a_member_file_lies_is_refused_naming_both(env, tmp_path, moved):
    dest = tmp_path / "d"
    env.add_file("F/a.zip", _zip({"ds/x": b"member", "ds/big": BIG}))
    assert _cli.run("pull", "drive:F", str(dest), "-x", "-q")[0] == 0
    env.add_file("F/ds/x/y", b"plain")
    if moved:   # what the old advice said: "move the file away and run again"
        os.rename(dest / "F/ds/x", tmp_path / "away")
    _refused_twice(env, dest, (
        f"Error: drive:F/ds/x (a folder on Drive) and the member ds/x of drive:F/a.zip (a "
        f"file) both land on {dest / 'F/ds/x'}; a pull lets neither replace the other: rename "
        "one of them on Drive, or pull without one (--exclude 'ds/x' or --exclude 'a.zip')"))
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", "--exclude", "ds/x")
    assert code == 0, err
    assert (dest / "F/ds/x").read_bytes() == b"member"


@pytest.mark.parametrize("moved", [False, True])
def test_a_file_added_where_a_member_folder_lies_is_refused_naming_both(env, tmp_path, moved):
    dest = tmp_path / "d"
    env.add_file("F/a.zip", _zip({"ds/x/y": b"member", "ds/big": BIG}))
    assert _cli.run("pull", "drive:F", str(dest), "-x", "-q")[0] == 0
    env.add_file("F/ds/x", b"plain")
    if moved:   # what the old advice said: "Move the folder away"
        os.rename(dest / "F/ds/x", tmp_path / "away")
    _refused_twice(env, dest, (
        f"Error: drive:F/ds/x (a file on Drive) and the member folder ds/x of drive:F/a.zip "
        f"(holding ds/x/y) both land on {dest / 'F/ds/x'}; a pull lets neither replace the "
        "other: rename one of them on Drive, or pull without one (--exclude 'ds/x' or "
        "--exclude 'a.zip')"))
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", "--exclude", "ds/x")
    assert code == 0, err
    assert ((tmp_path / "away/y") if moved else dest / "F/ds/x/y").read_bytes() == b"member"


@pytest.mark.parametrize("options", [(), ("-j", "1"), ("--chunk-size", "64KiB")])
def test_a_first_pull_refuses_the_archive_whose_file_lands_on_a_drive_folder(
        env, tmp_path, options):
    dest = tmp_path / "d"
    env.add_file("F/a.zip", _zip({"ds/x": b"member", "ds/big": BIG}))
    env.add_file("F/ds/x/y", b"plain")
    for _ in range(2):
        code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", *options)
        assert code == 1, err
        assert err.strip() == (
            f"Error: member 'ds/x' of a.zip is a file, but {dest / 'F/ds/x'} is a folder "
            "the pull stages from Drive; refusing the archive: rename that member, or that "
            "folder on Drive"), err
        x = dest / "F/ds/x"   # (the folder's file staged or not yet: timing)
        assert not os.path.lexists(x) or os.path.isdir(x) and not os.path.islink(x)
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", "--exclude", "a.zip")
    assert code == 0, err
    assert (dest / "F/ds/x/y").read_bytes() == b"plain"


@pytest.mark.parametrize("member", ["b.zip", "b.zip/in"])
def test_an_archive_added_where_a_member_lies_is_refused_naming_both(env, tmp_path, member):
    """`b.zip` added on Drive where `a.zip` extracted a member `b.zip` (a file, or a folder):
    refused as a plain file is. Before, archives were left out of the check: "… is already
    there and is not a copy of drive:F/b.zip …; move it away, or pull with --force" (or "is
    a folder … Move the folder away"), and either way a.zip was refused at every rerun."""
    dest = tmp_path / "d"
    env.add_file("F/a.zip", _zip({member: b"member", "ds/big": BIG}))
    assert _cli.run("pull", "drive:F", str(dest), "-x", "-q")[0] == 0
    env.add_file("F/b.zip", _zip({"ds/y": b"y"}))
    first, second = ("drive:F/b.zip", "the member b.zip of drive:F/a.zip") \
        if member == "b.zip" else ("drive:F/b.zip (a file on Drive)",
                                   "the member folder b.zip of drive:F/a.zip (holding b.zip/in)")
    _refused_twice(env, dest, (
        f"Error: {first} and {second} both land on {dest / 'F/b.zip'}; a pull lets neither "
        "replace the other: rename one of them on Drive, or pull without one (--exclude "
        "'b.zip' or --exclude 'a.zip')"))
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", "--exclude", "b.zip")
    assert code == 0, err
