"""attacknew34: a directory DEST's trash (``DEST/.drivestage-trash``) was made with
``os.makedirs`` and filled with ``rename``, both following links: a link planted as the
trash, or as a folder in it, took ``push --delete``'s removals outside DEST; and a file in the
trash where a folder was wanted (an earlier push trashed the file ``sub``, a folder ``sub``
is removed now) failed the push with a traceback. A trash that is a link is refused in one
line, before anything moves; a link or file in it is passed by for a numbered name."""
from __future__ import annotations

import os

from _cli import run

TRASH = ".drivestage-trash"


def _tree(tmp_path):
    src, dest, outside = tmp_path / "src", tmp_path / "nas" / "logs", tmp_path / "outside"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("a\n")
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "old.txt").write_text("old\n")
    outside.mkdir()
    return src, dest, outside


def test_a_trash_that_is_a_link_is_refused_and_nothing_leaves_dest(local_state, tmp_path):
    src, dest, outside = _tree(tmp_path)
    os.symlink(outside, dest / TRASH)

    code, _, err = run("push", str(src), str(dest), "--delete")

    assert code == 1, err
    assert err.splitlines()[-1] == (
        f"Error: {dest / TRASH} is a link or a file, not drivestage's trash folder; remove or "
        "rename it (drivestage moves what --delete and prune remove into it)")
    assert os.listdir(outside) == []
    assert (dest / "sub" / "old.txt").read_text() == "old\n"


def test_a_link_in_the_trash_is_passed_by(local_state, tmp_path):
    src, dest, outside = _tree(tmp_path)
    (dest / TRASH).mkdir()
    os.symlink(outside, dest / TRASH / "sub")

    code, _, err = run("push", str(src), str(dest), "--delete")

    assert code == 0, err
    assert os.listdir(outside) == []
    assert (dest / TRASH / "sub.~1~" / "old.txt").read_text() == "old\n"
    assert not (dest / "sub" / "old.txt").exists()


def test_a_trashed_file_where_a_folder_is_wanted_is_passed_by(local_state, tmp_path):
    src, dest, _ = _tree(tmp_path)
    (dest / TRASH).mkdir()
    (dest / TRASH / "sub").write_text("an earlier push's file sub\n")

    code, _, err = run("push", str(src), str(dest), "--delete")

    assert code == 0, err
    assert (dest / TRASH / "sub").read_text() == "an earlier push's file sub\n"
    assert (dest / TRASH / "sub.~1~" / "old.txt").read_text() == "old\n"
