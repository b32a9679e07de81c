"""A local folder pulled (``drivestage pull /path/src DEST``: a NAS, a dataset folder) that
holds a link to a folder above it (attackpull32).

The walk took the link's folder again inside itself: one such link (``cur -> .``,
``sub/up -> ..``) ended after 40 levels with ``Too many levels of symbolic links
(…/cur/cur/cur/…)``, a 600-character line; two (``a -> .``, ``b -> .``) made the walk list 2,
4, 8, … folders per level, up to 2^40: a pull that never ended. Now the listing through
such a link refuses it at once, as a Drive shortcut to a folder above it is refused, and
``--exclude`` leaves it out.
"""
from __future__ import annotations

import os

import pytest

import _cli
from _archives import tree
from _messages import error_line

LINKS = {"dot": {"cur": "."}, "parent": {"sub/up": ".."}, "two": {"a": ".", "b": "."}}


@pytest.mark.parametrize("case", list(LINKS))
def test_a_local_folder_holding_a_link_to_a_folder_above_is_refused_at_once(
        local_state, tmp_path, case):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "ok.txt").write_bytes(b"ok")
    (src / "sub" / "s.txt").write_bytes(b"s")
    for link, target in LINKS[case].items():
        os.symlink(target, src / link)
    first = sorted(LINKS[case])[0]
    dest = tmp_path / "d"

    code, out, err = _cli.run("pull", str(src), str(dest))

    assert code == 1, err
    assert error_line(err) == (
        f"Error: {src / first} is a link to {(src / first).resolve()}, a folder it sits in: "
        "a walk through it would never end. Leave it out (--exclude "
        f"'{os.path.basename(first)}', on a pull or a push --delete) or remove the link.")
    assert tree(dest) == {}
    code, out, err = _cli.run("pull", str(src), str(dest), "-q",
                              *[a for link in LINKS[case] for a in ("--exclude", link)])
    assert code == 0, err
    assert tree(dest) == {"src/ok.txt": b"ok", "src/sub/s.txt": b"s"}
