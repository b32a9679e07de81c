"""``drivestage ls`` of a local file that cannot be read (attackcli39): a failing disk's EIO,
a file of another user's (EACCES), a file of /proc that refuses a read (EINVAL). Each ended
in the traceback of the md5 the listing computes: one line now that names the file, what the
system said and what to do. /proc/self/mem (EIO) and /proc/self/clear_refs (EINVAL) are such
files for any user, root included: the forked child reads its own (tests/_forkcli.py)."""
from __future__ import annotations

import errno
import os

import pytest

from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


@pytest.mark.parametrize("path, line", [
    ("/proc/self/mem", "Error: cannot read /proc/self/mem: Input/output error; the disk may "
                       "be failing: copy what can be read elsewhere and check it"),
    ("/proc/self/clear_refs", "Error: cannot read /proc/self/clear_refs: Invalid argument; it "
                              "is no file whose bytes can be read (one of /proc or /sys?): "
                              "leave it out"),
])
def test_ls_of_a_file_that_cannot_be_read_is_one_line(local_state, path, line):
    done = cli_server().run(["ls", path], timeout=60, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", line + "\n")


def _unmakeable() -> tuple[str, str]:
    """A folder this user may not make (/sys refuses one to root too), and the system's words
    for why; the test is skipped where one can be made."""
    dest = "/sys/drivestage-attackcli39"
    try:
        os.mkdir(dest)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            pytest.skip(f"/sys says {exc.strerror} here")
        return dest, exc.strerror
    os.rmdir(dest)  # pragma: no cover - not Linux
    pytest.skip("a folder was made under /sys")  # pragma: no cover


def test_a_push_into_a_folder_that_cannot_be_made_is_one_line(local_state, tmp_path):
    """A local DEST whose folder this user may not make (a NAS share mounted read-only,
    another user's folder: EACCES, EPERM, EROFS) ended in the traceback of ``os.mkdir`` from
    the store's ``make_folders``. /sys refuses a new folder to root too."""
    dest, why = _unmakeable()
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_text("hi")
    done = cli_server().run(["push", str(src), dest], timeout=60, text=True)
    assert (done.returncode, done.stderr) == (1, (
        f"Error: cannot make the folder {dest}: {why}; give a folder this user can write\n"))


def test_a_pull_into_a_folder_that_cannot_be_made_says_what_to_do(emulator, drive_env,
                                                                   local_state):
    """The same DEST for a pull said ``cannot stage …: Operation not permitted``, and no
    more."""
    dest, why = _unmakeable()
    emulator.add_file("F/a.bin", b"alpha")
    done = cli_server().run(["pull", "-q", "drive:F/a.bin", dest], timeout=60, text=True)
    assert (done.returncode, done.stderr) == (1, (
        f"Error: cannot stage drive:F/a.bin into {dest}: {why}; pull into a folder this user "
        "can write\n"))
