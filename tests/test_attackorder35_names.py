"""Which archive of a folder pull holds a path two of them share, for names that sort
differently by bytes, by Unicode form or by case, and after the folder changed on Drive
(attackorder35: these held up; they pin what README and `pull --help` promise).

The order is the names' code points (Python's sort of str): capitals before lower case,
`10.zip` before `2.zip`, an NFD `é` (`e` + U+0301) before an NFC one (U+00E9)."""
from __future__ import annotations

import unicodedata

import pytest

import _cli
from _envs import env_emulator  # noqa: F401  (a fixture)
from test_attack22_stage import _tree
from test_chunkdet35_order import BIG, _zip


def _twice(dest, *options: str) -> dict[str, bytes]:
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", "-q", *options)
    assert code == 0, err
    got = _tree(dest)
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x", *options)
    assert code == 0 and "already staged)" in err and "extracted" not in err.split(")")[0], err
    assert _tree(dest) == got
    return got


NFC, NFD = unicodedata.normalize("NFC", "é"), unicodedata.normalize("NFD", "é")


@pytest.mark.parametrize("options", [(), ("--chunk-size", "64KiB")])
@pytest.mark.parametrize("names,held", [
    (("2.zip", "10.zip"), "2.zip"),            # not 10 after 2: character by character
    (("a.zip", "A.zip", "B.zip"), "a.zip"),    # capitals first: A, B, a
    ((NFC + ".zip", NFD + ".zip"), NFC + ".zip"),   # two names on Drive and on disk
])
def test_the_later_name_by_code_point_holds_the_path(env, tmp_path, names, held, options):
    for n, name in enumerate(names):   # the first the big one: fetched after the others
        env.add_file(f"F/{name}", _zip({"ds/x": name.encode(), **({"ds/big": BIG}
                                                                  if n == 0 else {})}))
    got = _twice(tmp_path / "d", *options)
    assert got["F/ds/x"] == held.encode()
    assert {f"F/{name}" for name in names} <= set(got)   # each staged under its own name


def test_an_archive_renamed_before_the_other_gives_the_path_to_the_other(env, tmp_path):
    env.add_file("F/a.zip", _zip({"ds/x": b"A", "ds/big": BIG}))
    b = env.add_file("F/b.zip", _zip({"ds/x": b"B"}))
    dest = tmp_path / "d"
    assert _twice(dest)["F/ds/x"] == b"B"
    env.store.update_meta(b, {"title": "0.zip"})
    assert _twice(dest)["F/ds/x"] == b"A"


def test_the_later_archive_deleted_on_drive_gives_the_path_back(env, tmp_path):
    env.add_file("F/a.zip", _zip({"ds/x": b"A"}))
    b = env.add_file("F/b.zip", _zip({"ds/x": b"B", "ds/big": BIG}))
    dest = tmp_path / "d"
    assert _twice(dest)["F/ds/x"] == b"B"
    env.store.delete(b)
    code, _, err = _cli.run("pull", "drive:F", str(dest), "-x")
    assert code == 0 and "WARNING" not in err, err
    assert (dest / "F/ds/x").read_bytes() == b"A"      # a.zip's, put back
    assert (dest / "F/ds/big").read_bytes() == BIG     # pull never deletes
    assert _twice(dest)["F/ds/x"] == b"A"


def test_an_archive_moved_into_a_subfolder_leaves_the_path_to_the_other(env, tmp_path):
    env.add_file("F/a.zip", _zip({"ds/x": b"A"}))
    b = env.add_file("F/b.zip", _zip({"ds/x": b"B"}))
    dest = tmp_path / "d"
    _twice(dest)
    sub = env.add_folder("F/sub")
    env.store.update_meta(b, {}, add_parents=[sub], remove_parents=[env.find("F")["id"]])
    got = _twice(dest)
    assert (got["F/ds/x"], got["F/sub/ds/x"]) == (b"A", b"B")


@pytest.mark.parametrize("name,target,held", [("0.zip", "b", b"B"), ("c.zip", "a", b"A"),
                                              ("sub/0.zip", "b", b"B")])
def test_a_shortcut_to_an_archive_takes_its_place_by_its_own_name(env, tmp_path, name,
                                                                   target, held):
    """A shortcut in the folder is an item of its own (its own id, its own name): it merges
    where its name puts it, the bytes of the archive it leads to."""
    ids = {"a": env.add_file("F/a.zip", _zip({"ds/x": b"A", "ds/big": BIG})),
           "b": env.add_file("F/b.zip", _zip({"ds/x": b"B"}))}
    env.add_shortcut(f"F/{name}", ids[target])
    for options in [(), ("--chunk-size", "64KiB")]:
        got = _twice(tmp_path / "d", *options)
        assert got["F/ds/x"] == held
        if name.startswith("sub/"):
            assert got["F/sub/ds/x"] == b"B"
