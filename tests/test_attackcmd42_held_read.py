"""``push`` into a local folder that replaces a file keeps the old copy aside until the new one
is verified (local_held), then removes it. The aside copy was read whole once more for its
md5 by a push in a fresh process (every push but a mirror's later periods): the md5 known of
the file, from the listing's md5 cache, was not carried to its new name. A multi-GB
checkpoint on a disk read back only to be deleted."""
from __future__ import annotations

import os
import time

import pytest

from _cli import run
from _forkcli import PIPE, cli_server
from _sigpush42 import ended

#: ``drivestage ARGS`` that says on stderr, last, each file it opened for reading in DEST.
_READS = ("import os, runpy, sys, atexit\n"
          "dest, read = sys.argv[1], []\n"
          "def hook(event, args):\n"
          "    if event == 'open' and isinstance(args[0], str) and \\\n"
          "            args[0].startswith(dest) and args[1] in ('r', 'rb', None) and \\\n"
          "            os.path.isfile(args[0]):\n"
          "        read.append(os.path.basename(args[0]))\n"
          "atexit.register(lambda: sys.stderr.write(f'READ {read}\\n'))\n"
          "sys.addaudithook(hook)\n"
          "sys.argv = ['drivestage', *sys.argv[2:]]\n"
          "runpy.run_module('drivestage', run_name='__main__', alter_sys=True)\n")


@pytest.fixture(scope="session", autouse=True)
def _cli_server():
    """The fork server, started before any test's leak check (tests/_forkcli.py)."""
    return cli_server()


def test_the_old_copy_kept_aside_is_not_read_again(local_state, tmp_path):
    src, dest = tmp_path / "run", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    ckpt = src / "epoch_001.pt"
    ckpt.write_bytes(os.urandom(300_000))
    rc, _, err = run("push", str(src), str(dest))
    assert rc == 0, err
    new = os.urandom(300_000)
    ckpt.write_bytes(new)
    os.utime(ckpt, (time.time() + 5, time.time() + 5))
    proc = cli_server().popen([str(dest) + os.sep, "push", str(src), str(dest)],
                              env=dict(os.environ), stdout=PIPE, stderr=PIPE, script=_READS)
    code, err = ended(proc)
    assert code == 0, err
    assert err.splitlines()[-1] == "READ []", err
    assert sorted(p.name for p in dest.iterdir() if p.name != ".drivestage") == \
        ["epoch_001.pt"]
    assert (dest / "epoch_001.pt").read_bytes() == new
