"""``drivestage push`` into a local folder (a mount, a disk) stopped by SIGTERM / SIGHUP as it
renames a file it copied into place (an audit hook sends the signal there): it ends as a
Ctrl-C does, and DEST holds no temporary copy (``.drivestage-upload-<tag>.<pid>-<random>``,
as large as the checkpoint) nor a copy set aside; the rerun leaves exactly SRC's files.
Killed there (before), the temporary copy stayed in DEST until the next push into it."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _forkcli import PIPE, cli_server
from _sigpush42 import STOPS, ended

#: ``drivestage ARGS`` that sends itself SIGNAL as it first renames a file whose new name
#: ends with NAME.
_AT_RENAME = ("import os, signal, runpy, sys\n"
              "sig, name = int(sys.argv[1]), sys.argv[2]\n"
              "done = []\n"
              "def hook(event, args):\n"
              "    if event == 'os.rename' and not done and isinstance(args[1], str) \\\n"
              "            and args[1].endswith(name):\n"
              "        done.append(1)\n"
              "        os.kill(os.getpid(), sig)   # (its handler runs here, in this hook)\n"
              "sys.addaudithook(hook)\n"
              "sys.argv = ['drivestage', *sys.argv[3:]]\n"
              "runpy.run_module('drivestage', run_name='__main__', alter_sys=True)\n")


@pytest.fixture(scope="session", autouse=True)
def _cli_server():
    """The fork server, started before any test's leak check (tests/_forkcli.py)."""
    return cli_server()


def _tree(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("sig,code,line", STOPS)
def test_a_signal_as_a_copy_is_renamed_into_a_local_dest(local_state, tmp_path, sig, code,
                                                         line):
    src, dest = tmp_path / "run", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    files = {"a.bin": os.urandom(200_000), "b.bin": os.urandom(100_000)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    proc = cli_server().popen([str(int(sig)), "b.bin", "push", str(src), str(dest)],
                              env=dict(os.environ), stdout=PIPE, stderr=PIPE,
                              script=_AT_RENAME)
    got, err = ended(proc)
    assert (got, err.splitlines()[-1]) == (code, line), err
    assert _others(dest, files) == []
    rc, _, err = run("push", str(src), str(dest))
    assert rc == 0, err
    assert _others(dest, files) == []
    assert {n: d for n, d in _tree(dest).items() if n in files} == files


def _others(dest, files: dict) -> list[str]:
    """What DEST holds besides SRC's files and the push's record folder (``.drivestage/``):
    a temporary copy (``.drivestage-upload-…``), a copy set aside."""
    return [n for n in _tree(dest) if n not in files and not n.startswith(".drivestage/")]
