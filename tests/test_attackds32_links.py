"""A local folder pulled whose links make a loop through a sibling: ``x/y -> ../z`` and
``z/w -> ../x`` (attackds32).

The refusal of a link to a folder above it (attackpull32) compared the link's folder with
its parent's alone: ``x/y/w`` leads to ``x``, above its parent's folder's parent. The walk
went ``x/y/w/y/w/…`` until ``Too many levels of symbolic links`` after 40 links (two such
pairs: 2^20 listings). Now it is refused at ``x/y/w`` with the usual line, and ``--exclude``
leaves it out.
"""
from __future__ import annotations

import os

import _cli
from _archives import tree
from _messages import error_line


def test_a_loop_of_links_through_a_sibling_is_refused_at_once(local_state, tmp_path):
    src = tmp_path / "src"
    (src / "x").mkdir(parents=True)
    (src / "z").mkdir()
    (src / "x" / "f.txt").write_bytes(b"x")
    (src / "z" / "g.txt").write_bytes(b"z")
    os.symlink("../z", src / "x" / "y")
    os.symlink("../x", src / "z" / "w")
    dest = tmp_path / "d"

    code, out, err = _cli.run("pull", str(src), str(dest))

    assert code == 1, err
    assert error_line(err) == (
        f"Error: {src / 'x/y/w'} is a link to {src / 'x'}, a folder it sits in: a walk "
        "through it would never end. Leave it out (--exclude 'w', on a pull or a push --delete) "
        "or remove the link.")
    assert tree(dest) == {}
    code, out, err = _cli.run("pull", str(src), str(dest), "-q", "--exclude", "w")
    assert code == 0, err
    assert tree(dest) == {"src/x/f.txt": b"x", "src/x/y/g.txt": b"z", "src/z/g.txt": b"z"}
