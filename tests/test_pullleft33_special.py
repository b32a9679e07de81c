"""FIFOs, sockets and devices in a local folder pushed or pulled (pullleft33).

Both walks left them out (never opened: a FIFO's read blocks until something writes it), but
said nothing: the summary only counted a file fewer, and a user missing a file had no line to
go by. Each walk now says it once: how many, and the first.
"""
from __future__ import annotations

import os

import pytest

import _cli
from _archives import tree


@pytest.fixture
def src(tmp_path):
    """A folder holding two files, a FIFO no one writes and a link to /dev/null."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "sub/b.txt").write_bytes(b"b")
    os.mkfifo(src / "sub/pipe")
    os.symlink("/dev/null", src / "null")
    return src


WARNING = "WARNING drivestage.local_tree: "


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if "not a regular file or folder" in line]


def test_a_push_says_once_what_special_files_it_skipped(tmp_path, src):
    dest = tmp_path / "dest"

    code, out, err = _cli.run("push", str(src), str(dest))

    assert code == 0, err
    assert _warnings(err) == [
        f"{WARNING}skipped 2 items of {src} that are not a regular file or folder (a FIFO, socket or "
        f"device: no data to send), the first {src / 'null'}"]
    assert tree(dest) == {"a.txt": b"a", "sub/b.txt": b"b"}
    # Pushed again (a mirror's next period, in this process): not said again.
    code, out, err = _cli.run("push", str(src), str(dest))
    assert code == 0, err
    assert _warnings(err) == []


@pytest.mark.parametrize("exclude", [[], ["--exclude", "pipe"]])
def test_a_pull_from_a_local_folder_says_once_what_special_files_it_skipped(
        local_state, tmp_path, src, exclude):
    """(A link leading outside the folder pulled, /dev/null here, is left out as such.)"""
    dest = tmp_path / "dest"

    code, out, err = _cli.run("pull", str(src), str(dest), *exclude)

    assert code == 0, err
    assert _warnings(err) == ([] if exclude else [
        f"{WARNING}skipped 1 item of {src} that is not a regular file or folder (a FIFO, "
        f"socket or device: no data to copy): {src / 'sub/pipe'}"])
    files = {k: v for k, v in tree(dest / "src").items() if not k.startswith(".drivestage")}
    assert files == {"a.txt": b"a", "sub/b.txt": b"b"}
