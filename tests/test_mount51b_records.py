"""mount51b: the records push keeps of the folders it could not read, on a hung mount and with
odd names or numbers (attack51's left).

``unread forget`` resolved the links of every record's path: a record on a mount that hangs
(a FUSE program that stopped answering) held the command meant to clean up after it for good.
A path with a newline was suggested as ``--emptied '…\\x0a…'``, which names another path when
copied; and an errno of 0 in a damaged record read ``(Success)``."""
from __future__ import annotations

import errno
import os
import subprocess

from _cli import run
from _drivemount import _mounted
from test_attacktr29_hung import _ended
from test_pushremount49_memory import _memory_of_this_process_none, _push  # noqa: F401


def test_unread_forget_and_list_wait_on_no_mount_that_hangs(local_state, tmp_path,
                                                            monkeypatch):
    """A record below a FUSE mount that stopped answering, one elsewhere. On main 136c4bb2
    ``unread forget`` of the other waited for good (still waiting after 10 s here): it
    resolved every record's links. Now each mount's paths are resolved in a bounded wait
    (set short here), a path not resolved in it matched as written and its mount said."""
    from drivestage import unread_memory, unread_records

    monkeypatch.setattr(unread_records, "RESOLVE_WITHIN", 0.2, raising=False)   # (main: none)
    other = str(tmp_path / "other")
    for mount in _mounted(tmp_path / "mnt", writable=True):
        os.mkdir(mount.point / "sub")
        sub = str(mount.point / "sub")
        unread_memory._change((), {sub: errno.EIO, other: errno.EIO})
        got: list = []
        mount.hang()
        try:
            for args in (("forget", other), ("forget", sub), ("list",)):
                ended, took = _ended(lambda: got.append(run("unread", *args)), 10)
                assert ended, f"unread {args[0]} waited on the mount that hangs ({took:.1f} s)"
        finally:
            mount.answer()
    (code, out, err), (code2, out2, err2), (code3, out3, _err3) = got
    assert (code, code2, code3) == (0, 0, 0), (err, err2)
    assert out.startswith(f"forgot {other}: "), out
    assert out2.startswith(f"forgot {sub}: "), out2
    assert f"WARNING drivestage.unread_records: {mount.point} does not answer (a mount that " \
        "hangs?): its paths are matched as written, their links not resolved" \
        in err.splitlines(), err
    assert out3 == "no folder is remembered as unread\n"


def test_a_path_with_a_newline_is_suggested_as_a_word_the_shell_reads_back(
        emulator, drive_env, local_state, tmp_path):
    """SRC/``a⏎b`` noted unread, empty now: the line suggests ``push once with --emptied``.
    On main 136c4bb2 the word was ``'…/a\\x0ab'``, which bash reads as a backslash, x, 0, a:
    that push was refused again (exit 1). Now ``$'…/a\\x0ab'``: the command run through bash
    pushes, the record forgotten."""
    from drivestage import unread_memory

    odd = tmp_path / "src" / "a\nb"
    odd.mkdir(parents=True)
    unread_memory._change((), {str(odd): errno.EIO})
    code, _out, err = _push(tmp_path)
    assert code == 1, err
    line = next(line for line in err.splitlines() if "--emptied" in line)
    word = line.split("push once with --emptied ", 1)[1]
    assert word == f"$'{tmp_path}/src/a\\x0ab'", line
    argv = subprocess.run(["bash", "-c", f"printf '%s\\0' push {tmp_path / 'src'} drive:runs/x "
                           f"--delete --emptied {word}"], capture_output=True, check=True
                          ).stdout.split(b"\0")[:-1]
    code, _out, err = run(*map(os.fsdecode, argv))
    assert code == 0, err
    assert unread_memory._read() == {}


def test_an_errno_of_0_in_a_record_is_said_unknown(emulator, drive_env, local_state,
                                                  tmp_path):
    """A damaged record's errno 0: on main 136c4bb2 ``(Success)`` in push's line and in
    ``unread list``."""
    from drivestage import unread_memory

    empty = tmp_path / "src" / "e"
    empty.mkdir(parents=True)
    unread_memory._change((), {str(empty): 0})
    code, _out, err = _push(tmp_path)
    assert code == 1, err
    assert f"ERROR drivestage.upload_tree: {empty} reads as an empty folder where the last " \
        "push could not read it (unknown): a mount point" in err, err
    out = run("unread", "list")[1]
    assert out.startswith(f"{empty}: "), out
    assert " UTC: unknown" in out, out
