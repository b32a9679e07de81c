"""``push SRC DEST --delete`` with DEST a folder that holds SRC (attackcli39): ``push
runs/exp1 runs --delete``, the arguments of a push into ``runs`` swapped with a path one level
too high. --delete removes from DEST what SRC lacks, and SRC's own folder is not in SRC: the
push moved SRC itself (and everything beside it) into DEST's trash, exit 0. Refused now, exit
2, before anything is sent or moved. The real CLI, forked (tests/_forkcli.py)."""
from __future__ import annotations

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


def _tree(top):
    return sorted(str(p.relative_to(top)) for p in top.rglob("*"))


@pytest.mark.parametrize("args", [["push", "--delete"], ["push", "--delete-permanently"],
                                  ["mirror", "--every", "600", "--delete"]])
def test_delete_into_a_folder_that_holds_src_is_refused(local_state, tmp_path, args):
    top = tmp_path / "runs"
    (top / "exp1").mkdir(parents=True)
    (top / "exp1" / "a.txt").write_text("a")
    (top / "exp2").mkdir()
    (top / "exp2" / "b.txt").write_text("b")
    before = _tree(top)
    done = cli_server().run([args[0], str(top / "exp1"), str(top), *args[1:]], timeout=60,
                            text=True)
    # (mirror says what it starts first: "mirroring SRC -> DEST every 600s; ...")
    said = done.stderr.split("\n", 1)[1] if args[0] == "mirror" else done.stderr
    assert (done.returncode, said) == (2, (
        f"Error: --delete would remove SRC itself: DEST {top} holds SRC {top / 'exp1'} (as "
        "exp1/), and --delete removes from DEST what SRC lacks; push into a folder that does "
        "not hold SRC, or leave --delete out\n")), done.stderr
    assert _tree(top) == before
