"""``drivestage ls`` of a local file that cannot be read (attackcli39): a failing disk's EIO,
a file of another user's (EACCES), a file of /proc that refuses a read (EINVAL). Each ended
in the traceback of the md5 the listing computes: one line now that names the file, what the
system said and what to do. /proc/self/mem (EIO) and /proc/self/clear_refs (EINVAL) are such
files for any user, root included: the forked child reads its own (tests/_forkcli.py)."""
from __future__ import annotations

import pytest

from _forkcli import cli_server


@pytest.fixture(scope="session", autouse=True)
def _cli_server():
    """The fork server, started before any test's leak check (tests/_forkcli.py)."""
    return cli_server()


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
