"""An archive member and a plain file of one Drive folder at one path (`a.zip` holds
`ds/x`, and the folder has `ds/x` too): a pull lets neither replace the other, whatever the
order it stages them in. A first pull refuses the archive; a rerun after the file was added
on Drive refused the file as "not a copy of drive:F/ds/x …; move it away, or pull with
--force", advice that only led to the archive refused at every rerun after (chunkdet35). It
names both items and the path now, before a byte moves."""
from __future__ import annotations

import pytest

import _cli
from _envs import env_emulator  # noqa: F401  (a fixture)
from test_attack22_stage import _tree
from test_chunkdet35_order import BIG, _zip


@pytest.mark.parametrize("options", [(), ("--chunk-size", "64KiB"), ("-j", "1")])
def test_a_first_pull_refuses_the_archive_whatever_the_order(env, tmp_path, options):
    env.add_file("F/a.zip", _zip({"ds/x": b"member", "ds/big": BIG}))
    env.add_file("F/ds/x", b"plain")
    code, _, err = _cli.run("pull", "drive:F", str(tmp_path / "d"), "-x", "-q", *options)
    assert code == 1 and "member 'ds/x' of a.zip would replace" in err, err
    x = tmp_path / "d/F/ds/x"    # (staged or not yet when the archive failed: timing)
    assert not x.exists() or x.read_bytes() == b"plain"


@pytest.mark.parametrize("force", [(), ("--force",)])
@pytest.mark.parametrize("options", [(), ("--chunk-size", "64KiB"), ("-j", "1")])
def test_a_file_added_where_a_member_lies_is_refused_naming_both(env, tmp_path, options,
                                                                   force):
    dest = tmp_path / "d"
    env.add_file("F/a.zip", _zip({"ds/x": b"member", "ds/big": BIG}))
    assert _cli.run("pull", "drive:F", str(dest), "-x", "-q")[0] == 0
    env.add_file("F/ds/x", b"plain")
    before = _tree(dest)
    env.clear_requests()
    for _ in range(2):
        code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", *options, *force)
        assert code == 1, err
        assert err.strip() == (
            f"Error: drive:F/ds/x and the member ds/x of drive:F/a.zip both land on "
            f"{dest / 'F/ds/x'}; a pull lets neither replace the other: rename one of them "
            "on Drive, or pull without one (--exclude 'ds/x' or --exclude 'a.zip')"), err
        assert _tree(dest) == before                  # nothing written
    assert not [r for r in env.requests if r.query.get("alt") == "media"]   # nor fetched
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", "--exclude", "ds/x")
    assert code == 0, err


def test_a_file_with_the_members_very_bytes_is_staged_beside_it(env, tmp_path):
    dest = tmp_path / "d"
    env.add_file("F/a.zip", _zip({"ds/x": b"same", "ds/big": BIG}))
    assert _cli.run("pull", "drive:F", str(dest), "-x", "-q")[0] == 0
    env.add_file("F/ds/x", b"same")
    for _ in range(2):
        code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q")
        assert code == 0, err
    assert (dest / "F/ds/x").read_bytes() == b"same"
