"""A write the OS refuses with EFBIG, "File too large" (attackcli39): the process's file-size
limit (``ulimit -f``, a batch system's or a container's), or a FAT32 disk, which holds no file
of 4 GiB. A push into a local DEST ended in a traceback (``OSError: [Errno 27] File too
large`` raised from the copy), and a pull said ``cannot stage … into …: File too large`` and
nothing of what to do. Each is one ``Error:`` line now that names the limit and how to raise
it; nothing is left under the final name. The real CLI, forked with its imports done and
with ``RLIMIT_FSIZE`` set in the child (tests/_forkcli.py)."""
from __future__ import annotations

import os


from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)

LIMIT = {"RLIMIT_FSIZE": (1000, 1000)}
RAISE = ("this process may write no file larger than 1000 B (its file-size limit, ulimit -f); "
         "raise it (ulimit -f unlimited)")


def test_a_push_into_a_local_folder_past_the_file_size_limit(local_state, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "big.bin").write_bytes(b"x" * 5000)
    done = cli_server().run(["push", str(src), str(dst)], timeout=60, text=True, limits=LIMIT)
    assert (done.returncode, done.stderr) == (1, (
        f"Error: cannot write {dst}/big.bin (a copy of {src}/big.bin, 4.9 KiB): {RAISE}, and "
        "run again\n"))
    assert os.listdir(dst) == []    # no copy cut short, under its name or a temporary one


def test_a_pull_past_the_file_size_limit(emulator, drive_env, local_state, tmp_path):
    emulator.add_file("F/big.bin", b"x" * 5000)
    dest = tmp_path / "d"
    done = cli_server().run(["pull", "-q", "drive:F/big.bin", str(dest)], timeout=60,
                            text=True, limits=LIMIT)
    assert (done.returncode, done.stderr) == (1, (
        f"Error: cannot stage drive:F/big.bin into {dest}: File too large: {RAISE}, and run "
        "again: the download resumes where it stopped\n"))
    assert not (dest / "big.bin").exists()
