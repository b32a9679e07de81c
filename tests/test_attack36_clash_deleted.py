"""A file added on Drive where an archive of the folder had extracted a member, once the
user deleted that member here (``rm data/F/ds/x``, to have it extracted again): the rerun's
check that names both before a byte moves (chunkdet35) looked only at what DEST held there,
and nothing was. The Drive file was downloaded into the member's place, then the archive was
refused with a first pull's words (``member 'ds/x' of a.zip would replace …, a file staged
from Drive …``), every rerun after too: the archive's member replaced by another file
without being asked, and no ``--exclude`` named. It is refused as when the member is there,
naming both, nothing fetched or written. Found by attack36."""
from __future__ import annotations

import pytest

import _cli
from _envs import env_emulator  # noqa: F401  (a fixture)
from test_attack22_stage import _tree
from test_chunkdet35_order import BIG, _zip


@pytest.mark.parametrize("options", [(), ("--chunk-size", "64KiB"), ("-j", "1")])
def test_a_file_added_where_a_deleted_member_lay_is_refused_naming_both(env, tmp_path, options):
    dest = tmp_path / "d"
    env.add_file("F/a.zip", _zip({"ds/x": b"member", "ds/big": BIG}))
    assert _cli.run("pull", "drive:F", str(dest), "-x", "-q")[0] == 0
    (dest / "F/ds/x").unlink()               # the user wants it extracted again
    env.add_file("F/ds/x", b"plain")
    before = _tree(dest)
    env.clear_requests()
    for _ in range(2):
        code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", *options)
        assert code == 1, err
        assert err.strip() == (
            f"Error: drive:F/ds/x and the member ds/x of drive:F/a.zip both land on "
            f"{dest / 'F/ds/x'}; a pull lets neither replace the other: rename one of them "
            "on Drive, or pull without one (--exclude 'ds/x' or --exclude 'a.zip')"), err
        assert _tree(dest) == before                  # nothing written
    assert not [r for r in env.requests if r.query.get("alt") == "media"]   # nor fetched
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", "--exclude", "ds/x")
    assert code == 0, err
    assert (dest / "F/ds/x").read_bytes() == b"member"   # extracted again, as asked


def test_a_deleted_member_of_the_files_very_bytes_is_refused_too(env, tmp_path):
    """Of the member's very bytes: the file was downloaded, then the archive refused all the
    same ("would replace … a file staged from Drive"), at every rerun. Named before a byte
    moves, as for other bytes (the member no longer there to be taken for its copy)."""
    dest = tmp_path / "d"
    env.add_file("F/a.zip", _zip({"ds/x": b"same", "ds/big": BIG}))
    assert _cli.run("pull", "drive:F", str(dest), "-x", "-q")[0] == 0
    (dest / "F/ds/x").unlink()
    env.add_file("F/ds/x", b"same")
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q")
    assert code == 1, err
    assert err.startswith("Error: drive:F/ds/x and the member ds/x of drive:F/a.zip both land "
                          "on "), err
    assert not (dest / "F/ds/x").exists()
