"""attack52: an empty PATH (``"$DIR"`` with the variable unset) given to the commands that
forget what push remembers of a folder it could not read.

``drivestage unread forget "$DIR"`` took ``""`` as the working folder (``os.path.abspath``):
run from inside a remembered mount point (``cd /content/logs/mnt``), it forgot that record,
exit 0, and the next ``push --delete`` trashed the copies on Drive the record kept. Every
other command refuses an empty SRC, DEST or PATH (attackcli39: ``refuse_empty``);
``--host ""`` matched no record and said ``no such record``, exit 0, and ``push --emptied ""``
said ``--emptied  is not SRC …`` (the empty name shown as nothing), or, run from inside
SRC, took the working folder as the one emptied on purpose."""
from __future__ import annotations

import errno
import json

import pytest

from _cli import run


def _remembered(local_state, folder) -> None:
    """``folder`` remembered as unread (EIO) by this machine."""
    from drivestage import unread_memory

    unread_memory._change((), {str(folder): errno.EIO})


def _records(local_state) -> list:
    return sorted(json.loads((local_state / "state" / "unread.json").read_text())["folders"])


@pytest.mark.parametrize("args, line", [
    (("",), "Error: PATH is empty (an unset variable?); give the folder whose record to "
            "forget (drivestage unread list shows them)"),
    (("--host", ""), "Error: --host is empty (an unset variable?); give the name of the "
                     "machine whose records to forget (drivestage unread list shows them)"),
])
def test_unread_forget_refuses_an_empty_path_or_host(local_state, monkeypatch, args, line):
    """Run from the remembered folder itself. On main 8704ac72 ``forget ""`` printed ``forgot
    …/mnt: …``, exit 0, and the record was gone; ``--host ""``: ``no such record``, exit 0."""
    mnt = local_state / "src" / "mnt"
    mnt.mkdir(parents=True)
    _remembered(local_state, mnt)
    monkeypatch.chdir(mnt)
    code, out, err = run("unread", "forget", *args)
    assert (code, out, err) == (2, "", line + "\n")
    assert _records(local_state) == [str(mnt)]


def test_push_refuses_an_empty_emptied(local_state, emulator, drive_env, monkeypatch):
    """``--emptied ""`` run from inside SRC: on main 8704ac72 the working folder was taken
    as the folder emptied on purpose (exit 0, its record forgotten)."""
    src = local_state / "src"
    mnt = src / "mnt"
    mnt.mkdir(parents=True)
    (src / "a.txt").write_text("a")
    _remembered(local_state, mnt)
    monkeypatch.chdir(mnt)
    code, out, err = run("push", str(src), "drive:runs/x", "--emptied", "")
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == ("Error: --emptied is empty (an unset variable?); give the "
                                    "folder of SRC that was emptied on purpose")
    assert _records(local_state) == [str(mnt)]
    assert run("ls", "drive:")[1] == ""   # (nothing sent)
