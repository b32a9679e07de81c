"""A DEST that is, or lies below, a link whose target is gone (attackcli39): a backup disk's
folder linked in (``~/backup -> /mnt/disk/backup``) while the disk is not mounted. A pull said
``cannot stage … into …: File exists`` and a push ``… is a file, not a folder``: neither named
the link. Both name it and its target now, exit 2, and nothing is made (not the link's
target either). The real CLI, forked with its imports done (tests/_forkcli.py)."""
from __future__ import annotations

import os

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


@pytest.mark.parametrize("args, below, line", [
    (["pull", "-q", "drive:F/a.bin"], "", "Error: DEST {link} is a link to {target}, which "
                                          "does not exist; make that folder, or give another "
                                          "DEST"),
    (["pull", "-q", "drive:F"], "/sub", "Error: DEST {link}/sub: {link} is a link to {target}, "
                                        "which does not exist; make that folder, or give "
                                        "another DEST"),
    (["push", "{src}"], "", "Error: DEST {link} is a link to {target}, which does not exist; "
                            "make that folder, or give another DEST"),
    (["push", "{src}"], "/sub", "Error: DEST {link}/sub: {link} is a link to {target}, which "
                                "does not exist; make that folder, or give another DEST"),
])
def test_a_dest_through_a_dangling_link_names_it(emulator, drive_env, local_state, tmp_path,
                                                 args, below, line):
    emulator.add_file("F/a.bin", b"alpha")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_text("hi")
    link, target = tmp_path / "backup", tmp_path / "disk" / "backup"
    os.symlink(target, link)
    done = cli_server().run([*(a.format(src=src) for a in args), f"{link}{below}"], timeout=60,
                            text=True)
    assert (done.returncode, done.stderr) == (2, line.format(link=link, target=target) + "\n")
    assert not (tmp_path / "disk").exists() and os.readlink(link) == str(target)


@pytest.mark.parametrize("below", ["", "/sub"])
def test_a_state_dir_through_a_dangling_link_names_it(emulator, drive_env, local_state,
                                                      tmp_path, below):
    """``DRIVESTAGE_STATE_DIR`` through such a link said "is a file, or lies under one"."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_text("hi")
    link, target = tmp_path / "cache", tmp_path / "disk" / "cache"
    os.symlink(target, link)
    env = dict(os.environ, DRIVESTAGE_STATE_DIR=f"{link}{below}")
    done = cli_server().run(["push", str(src), "drive:S"], env=env, timeout=60, text=True)
    named = f"{link}" if not below else f"{link}{below}: {link}"
    assert (done.returncode, done.stderr) == (2, (
        f"Error: DRIVESTAGE_STATE_DIR {named} is a link to {target}, which does not exist; "
        "make that folder, or give another DRIVESTAGE_STATE_DIR\n"))
    assert emulator.find("S") is None and not (tmp_path / "disk").exists()
