"""A SIGTERM in the two moments of ``drivestage pull`` its stop (last session's
``as_ctrl_c``) did not cover: while the command loads the library it runs (the imports at
the top of its function), and as it prints its summary, its work done. Neither can lose
anything: before the first, nothing is begun (DEST is not even made); at the second,
everything is in place and recorded (the rerun downloads nothing). But the process died of
the signal (-15), without a word. Now the whole command is covered: it ends as at any other
moment, ``Interrupted by SIGTERM.`` and exit 143."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import drivestage

from _cli import child_env, run

#: A fresh ``drivestage`` that sends itself SIGTERM at ``import MODULE`` (an audit hook: the
#: handler runs there), or at its first ``click.echo`` (MODULE ``echo``: the summary).
_AT = ("import os, signal, sys\n"
       "at = sys.argv[1]\n"
       "def hook(event, args):\n"
       "    if event == 'import' and args[0] == at:\n"
       "        os.kill(os.getpid(), signal.SIGTERM)\n"
       "sys.addaudithook(hook)\n"
       "import click\n"
       "echo = click.echo\n"
       "def echoed(*args, **kwargs):\n"
       "    if at == 'echo':\n"
       "        os.kill(os.getpid(), signal.SIGTERM)\n"
       "    return echo(*args, **kwargs)\n"
       "click.echo = echoed\n"
       "from drivestage.entry import main\n"
       "sys.argv[:] = ['drivestage', *sys.argv[2:]]\n"
       "main()\n")


@pytest.mark.parametrize("at", ["drivestage.stage", "echo"])
def test_a_sigterm_as_a_pull_loads_or_sums_up(emulator, local_state, drive_env, tmp_path, at):
    data = os.urandom(50_000)
    emulator.add_file("d/w.bin", data)
    dest = tmp_path / "data"
    # (this very drivestage: the editable install's is another checkout's)
    env = dict(child_env(emulator),
               PYTHONPATH=os.path.dirname(os.path.dirname(drivestage.__file__)))
    proc = subprocess.run([sys.executable, "-c", _AT, at, "pull", "drive:d/w.bin", str(dest),
                           "-q", "--json"], env=env, capture_output=True, timeout=60)
    assert (proc.returncode, proc.stderr.decode()) == (143, "Interrupted by SIGTERM.\n")
    if at == "echo":   # its work done: in place, recorded; the rerun fetches nothing
        assert (dest / "w.bin").read_bytes() == data
        seen = len(emulator.requests)
        rc, out, err = run("pull", "drive:d/w.bin", str(dest), "-q", "--json")
        assert (rc, err, json.loads(out)["action"]) == (0, "", "cached")
        assert [r for r in emulator.requests[seen:] if r.kind == "media.download"] == []
    else:              # nothing begun
        assert not dest.exists()
