"""push and mirror of a SRC holding a path longer than the kernel takes (4,095 bytes): made by
relative paths, a deep tree, or SRC named relatively from a deep folder. Every read of a push
opens a file by its absolute path: a folder past the limit was left out without a word (its
stat failed; exit 0, its files missing on Drive, and ``--delete`` would take their copies
there), a file past it ended the push in ``OSError: File name too long``, a traceback. Now
the push is refused before anything is sent, with one line that names the path's start and
the ``--exclude`` that leaves it out. (A pull's DEST and files: stage_walk's check_*.)"""
from __future__ import annotations

import os

import pytest

from _cli import run
from _messages import error_line

NAME = "d" * 200   # (21 such folders pass 4,095 bytes from any tmp_path)


def _deep(top, depth: int, leaf: str = "deep.txt") -> None:
    """``depth`` folders named NAME below ``top``, ``leaf`` in the last: made by relative
    paths (each step's absolute path may be longer than the kernel takes)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(NAME, dir_fd=fd)
            below = os.open(NAME, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
        out = os.open(leaf, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, b"deep")
        os.close(out)
    finally:
        os.close(fd)


def _into_deep_cwd(monkeypatch, tmp_path, room: int) -> None:
    """The working folder: one below tmp_path whose absolute path leaves ``room`` bytes of
    the kernel's 4,095 (entered by relative steps)."""
    monkeypatch.chdir(tmp_path)   # (put back after the test)
    while len(os.fsencode(os.getcwd())) + 1 + len(NAME) <= 4095 - room:
        os.mkdir(NAME)
        os.chdir(NAME)
    last = 4095 - room - len(os.fsencode(os.getcwd())) - 1
    os.mkdir("e" * last)
    os.chdir("e" * last)
    assert len(os.fsencode(os.getcwd())) == 4095 - room


def _refused(code: int, err: str, start: str) -> str:
    """The one line of a push refused for a path too long (exit 2), starting at ``start``."""
    assert code == 2, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    line = error_line(err)
    assert line.startswith(f"Error: {start[:60]}"), line[:300]
    assert "over the 4,095 bytes Linux takes in a path" in line, line[:600]
    assert len(line) < 1000, line[:300]
    return line


def test_a_folder_of_src_past_the_limit_refuses_the_push_with_the_exclude_that_leaves_it(
        emulator, drive_env, local_state, tmp_path):
    # An earlier push's copy of the deep file (from a SRC nearer to /): the old walk left
    # the folder out without a word, and --delete took that copy.
    emulator.add_file("runs/x/" + "/".join([NAME] * 21) + "/deep.txt", b"deep")
    src = tmp_path / "run"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    _deep(src, 21)
    code, out, err = run("push", str(src), "drive:runs/x", "--delete")
    line = _refused(code, err, str(src))
    assert emulator.find("runs/x/a.txt") is None   # (refused before anything was sent)
    assert emulator.find("runs/x/" + "/".join([NAME] * 21) + "/deep.txt") is not None
    glob = line.rsplit("--exclude ", 1)[1]
    assert glob.startswith(f"'{NAME}/*/{NAME}") or glob == f"'{NAME}'", glob
    # The line's --exclude, as a shell reads it, leaves out the folder: the rest is sent.
    code, out, err = run("push", str(src), "drive:runs/x", "--exclude", glob.strip("'"))
    assert code == 0, err[-2000:]
    assert emulator.read_bytes(emulator.find("runs/x/a.txt")["id"]) == b"a"


@pytest.mark.parametrize("command", ["push", "mirror"])
@pytest.mark.timeout(30)   # (the old mirror logged the traceback every period, for good)
def test_a_file_past_the_limit_under_a_src_named_from_a_deep_folder_is_one_line(
        emulator, drive_env, local_state, tmp_path, monkeypatch, command):
    _into_deep_cwd(monkeypatch, tmp_path, room=8)
    os.mkdir("run")
    with open("run/ok", "wb") as fh:   # run/ok: 4,094 bytes; run/a.txt: 4,097
        fh.write(b"ok")
    with open("run/a.txt", "wb") as fh:
        fh.write(b"a")
    more = ["--every", "0.1"] if command == "mirror" else []
    code, out, err = run(command, "run", "drive:runs/x", *more)
    line = _refused(code, err, str(tmp_path))
    assert line.endswith("/run/a.txt is 4,097 bytes long, over the 4,095 bytes Linux takes "
                         "in a path: no push can read it there; move SRC to a shorter path, "
                         "or push without it: --exclude 'a.txt'"), line[-300:]
    assert emulator.find("runs/x/ok") is None


def test_a_src_past_the_limit_is_one_line(emulator, drive_env, local_state, tmp_path,
                                           monkeypatch):
    _into_deep_cwd(monkeypatch, tmp_path, room=2)
    os.mkdir("run")
    with open("run/a.txt", "wb") as fh:
        fh.write(b"a")
    code, out, err = run("push", "run", "drive:runs/x")
    line = _refused(code, err, f"SRC {tmp_path}")
    assert line.endswith("/run is 4,097 bytes long, over the 4,095 bytes Linux takes in a "
                         "path; push from a folder with a shorter path (move it nearer to /)")
    assert emulator.find("runs/x") is None


def test_a_link_that_leads_past_the_limit_is_one_line(emulator, drive_env, local_state,
                                                      tmp_path):
    """``--follow-symlinks``: a link of SRC read where it leads, a file whose path is past
    the limit (links of short targets in a chain: one target that long is refused)."""
    out = tmp_path / "out"
    out.mkdir()
    _deep(out, 21)
    half = "/".join([NAME] * 10)
    os.symlink(str(out / half), tmp_path / "half")   # (a link to the tree's middle)
    src = tmp_path / "run"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    os.symlink(str(tmp_path / "half") + "/" + "/".join([NAME] * 11) + "/deep.txt",
               src / "latest.txt")
    code, out_, err = run("push", str(src), "drive:runs/x", "--follow-symlinks")
    line = _refused(code, err, str(out))
    size = len(os.fsencode(str(out))) + 21 * (len(NAME) + 1) + len("/deep.txt")
    assert line.endswith(f"...{NAME[:91]}/deep.txt is {size:,} bytes long, over the 4,095 bytes "
                         "Linux takes in a path: no push can read it there; move SRC to a "
                         "shorter path, or push without it: --exclude 'latest.txt'"), line[-300:]
    assert emulator.find("runs/x") is None
