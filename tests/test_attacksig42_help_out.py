"""``drivestage --help``, ``--version`` (and trainer's) whose standard output fails: they
print while click reads the arguments, before the group's ``invoke`` put standard output
behind :class:`drivestage.stdout_sink.Sink`. On a full disk (``> /dev/full``) that was
click's ``OSError`` traceback (exit 1); with the reader gone (``drivestage --help | true``,
a ``head`` that ended) it was exit 1 and no word, where ``drivestage pull --help`` (read
inside ``invoke``) said 0. Real command lines, forked from the CLI server."""
from __future__ import annotations

import os

import pytest

from _forkcli import PIPE, cli_server

FULL = ("Error: cannot write to standard output (/dev/full): No space left on device; make "
        "room where it goes, or send it elsewhere\n")

#: ``trainer ARGS`` (the fork server's children run ``python -m drivestage`` unless told).
TRAINER = "from trainer.entry import main\nmain()\n"

CASES = [(None, ["--help"]), (None, ["--version"]), (None, ["pull", "--help"]),
         (TRAINER, ["--help"]), (TRAINER, ["--version"])]
IDS = ["help", "version", "pull-help", "trainer-help", "trainer-version"]


@pytest.fixture(scope="module", autouse=True)
def _cli_server():
    """The fork server, started before any test's leak check (tests/_forkcli.py)."""
    return cli_server()


@pytest.mark.parametrize("script,args", CASES, ids=IDS)
def test_help_on_a_full_disk_is_one_line(script, args):
    with open("/dev/full", "w") as full:
        child = cli_server().popen(args, stdout=full, stderr=PIPE, text=True, script=script)
        _, err = child.communicate(timeout=120)
    assert (child.returncode, err) == (1, FULL)


@pytest.mark.parametrize("script,args", CASES, ids=IDS)
def test_help_whose_reader_is_gone_says_0(script, args):
    read, write = os.pipe()
    os.close(read)   # (the reader gone before a byte is written: a broken pipe at once)
    try:
        child = cli_server().popen(args, stdout=write, stderr=PIPE, text=True, script=script)
    finally:
        os.close(write)
    _, err = child.communicate(timeout=120)
    assert (child.returncode, err) == (0, "")
