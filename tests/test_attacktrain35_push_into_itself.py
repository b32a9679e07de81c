"""attacktrain35: ``drivestage push /x /x/mirror`` (a local DEST inside SRC; ``mirror`` does it
every period): each push copied SRC into DEST with what the earlier pushes had copied there,
one level deeper each time (``/x/mirror/mirror/a.txt`` after two pushes; a mirror's periods
fill the disk), exit 0. DEST's own folder is left out of what a push sends from SRC now, with
a warning; what SRC holds beside it is pushed as before."""
from __future__ import annotations

import os

from _cli import run


def _tree(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files
                  if ".drivestage" not in os.path.relpath(d, root).split(os.sep))


def test_a_push_into_a_folder_inside_src_never_copies_dest_into_itself(local_state, tmp_path):
    src = tmp_path / "x"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a\n")
    (src / "sub" / "b.txt").write_text("b\n")
    dest = src / "mirror"

    for _ in range(3):
        code, _, err = run("push", str(src), str(dest))
        assert code == 0, err
    assert _tree(dest) == ["a.txt", os.path.join("sub", "b.txt")]
    assert (f"DEST {dest} lies inside SRC {src}: its own folder (mirror/) is left out of what "
            f"is pushed") in err, err
    # A file named like DEST elsewhere in SRC is still pushed (the rule is DEST's path).
    (src / "sub" / "mirror").mkdir()
    (src / "sub" / "mirror" / "c.txt").write_text("c\n")
    code, _, err = run("push", str(src), str(dest))
    assert code == 0, err
    assert _tree(dest) == ["a.txt", os.path.join("sub", "b.txt"),
                           os.path.join("sub", "mirror", "c.txt")]
