"""mount52: every command drivestage suggests names a path or glob as a shell reads it back.

mount51b made ``$'…'`` the word for a path with a character a terminal must not be sent
(a newline, a byte not UTF-8) in unread.py's suggestions; the other suggestions kept the
old ways: ``--exclude`` put a ``?`` for such a character (``caf?.bin``: it left out
``cafe.bin`` too, a file the user meant to push), the refusal of globs that chose nothing
quoted a glob after escaping it (``'a\\x0ab'``: another glob when copied), and a waiting
push named the other one's command so (``'/data/a\\x0ab'``). Each is now the word bash and
zsh read back as the very name (:func:`drivestage.shell_words.shell_word`)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from _cli import run
from _messages import error_line


def _read_back(word: str) -> str:
    """``word`` as bash reads it (one argument), decoded as Python decodes its argv."""
    done = subprocess.run(["bash", "-c", f"printf '%s\\0' {word}"], capture_output=True,
                          check=True)
    (arg,) = done.stdout.split(b"\0")[:-1]
    return os.fsdecode(arg)


def test_the_exclude_a_push_suggests_leaves_out_that_file_only(emulator, drive_env,
                                                               local_state, tmp_path):
    """A name not UTF-8 beside ``cafe.bin``: on main 8704ac72 the suggested ``--exclude
    'caf?.bin'`` left ``cafe.bin`` out too (not pushed, exit 0)."""
    src = tmp_path / "src"
    src.mkdir()
    with open(os.path.join(os.fsencode(str(src)), b"caf\xe9.bin"), "wb") as fh:
        fh.write(b"latin-1 name")
    (src / "cafe.bin").write_bytes(b"e")
    (src / "ok.bin").write_bytes(b"ok")
    code, _out, err = run("push", str(src), "drive:F")
    assert code == 2, err
    word = re.search(r"\(--exclude (.*)\)$", error_line(err)).group(1)
    assert word == "$'caf\\xe9.bin'", err
    code, _out, err = run("push", str(src), "drive:F", "--exclude", _read_back(word))
    assert code == 0, err
    assert emulator.find("F/cafe.bin") is not None, err
    assert emulator.find("F/ok.bin") is not None


def test_a_refused_glob_with_a_newline_is_shown_as_the_glob():
    """On main 8704ac72: ``--exclude 'a\\x0ab'``, a glob of a backslash, x, 0, a."""
    from drivestage.errors import NothingChosenError
    from drivestage.no_match import refuse_nothing_chosen

    with pytest.raises(NothingChosenError) as got:
        refuse_nothing_chosen("drive:F", ["*.zip"], ["a\nb"], ["x.tar"])
    said = str(got.value)
    assert said.startswith("--include '*.zip' --exclude $'a\\x0ab' leave no file of drive:F "
                           "to pull (it holds x.tar)"), said
    assert _read_back("$'a\\x0ab'") == "a\nb"


def test_a_waiting_push_names_the_others_path_as_a_shell_reads_it(tmp_path, monkeypatch):
    """On main 8704ac72 the holder's command read ``drivestage push '/data/a\\x0ab' drive:x``
    (quoted, then escaped: another path)."""
    from drivestage import lock_holders

    monkeypatch.setattr(sys, "argv", ["/usr/bin/drivestage", "push", "/data/a\nb", "drive:x"])
    mine = lock_holders.claim(str(tmp_path), "push.lock")
    try:
        monkeypatch.setattr(lock_holders, "_live", lambda name, record: True)
        said = lock_holders.described(str(tmp_path), "push.lock")
    finally:
        os.unlink(mine)
    assert said.endswith(": drivestage push $'/data/a\\x0ab' drive:x)"), said
    assert _read_back("$'/data/a\\x0ab'") == "/data/a\nb"
