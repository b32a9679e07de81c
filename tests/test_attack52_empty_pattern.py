"""attack52: ``push --pattern "$PATTERN"`` with the variable unset.

``--pattern`` says which names are checkpoints, and its help promises "other files are never
touched". An empty regex matches every name: ``push logs/ DEST --keep-last 1 --pattern ""``
took ``a.txt`` and ``b.txt`` (a run's ``results.csv``, its logs) for old checkpoints and
deleted them from Drive for good, ``2 pruned``, exit 0. Now a usage error, exit 2, before
Drive is asked anything."""
from __future__ import annotations

import pytest

from _cli import ok, run

LINE = ("Error: --pattern '' is empty (an unset variable?): it matches every name, and the "
        "policy would prune files that are no checkpoint; give a regex of checkpoint names, or "
        "leave it out for the default (epoch_004.pt, .pth, .ckpt, ...)")


@pytest.mark.parametrize("command", ["push", "prune"])
def test_an_empty_pattern_is_refused_and_nothing_is_deleted(emulator, drive_env, local_state,
                                                           tmp_path, command):
    """On main 8704ac72: ``push … 2 pruned`` / prune ``2 deleted``, exit 0; a.txt and b.txt
    gone from Drive."""
    src = tmp_path / "logs"
    src.mkdir()
    for name, text in (("a.txt", "a"), ("b.txt", "bb"), ("c.txt", "ccc")):
        (src / name).write_text(text)
    ok("push", str(src), "drive:runs/x")
    before = ok("ls", "drive:runs/x")
    args = [str(src), "drive:runs/x"] if command == "push" else ["drive:runs/x"]
    code, out, err = run(command, *args, "--keep-last", "1", "--pattern", "")
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == LINE
    assert ok("ls", "drive:runs/x") == before


def test_the_library_refuses_it_too():
    from drivestage.errors import PolicyError
    from drivestage.retention import RetentionPolicy

    with pytest.raises(PolicyError, match=r"^pattern='' is empty \(an unset variable\?\)"):
        RetentionPolicy(keep_last=1, pattern="")
