"""Holder files that lie (attackds29): a push waiting for a lock reads the holder files
beside it, written by other processes (another user's, on a shared state folder; a process
whose command line holds any bytes); what it prints must be safe on a terminal, and a
record that lies never ends the push."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading

import pytest

from drivestage import lock_holders
from drivestage.locks import tree_lock

from test_lock28_holders import HOLDER, LINEAGE, _said_while_waiting

OTHER_TAG = "0badf00d"   # another machine's or container's pid namespace: taken as live


def test_a_holder_s_command_with_escape_sequences_is_shown_escaped(tmp_path, monkeypatch):
    """A folder name that holds an escape sequence (a title from anywhere) reaches the
    holder's argv; the waiter's message printed it raw: it set the terminal's title (OSC)
    or cleared the screen of whoever waited."""
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    script = tmp_path / "holder.py"
    script.write_text(HOLDER.format(kind="tree_lock", args=repr(LINEAGE)))
    child = subprocess.Popen([sys.executable, str(script), "./r\x1b]0;owned\x07\x1b[2J"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=os.environ)
    assert child.stdout.readline() == b"held\n"

    def wait() -> None:
        with tree_lock(LINEAGE[1:]):
            pass
    try:
        thread, handler = _said_while_waiting(wait)
    finally:
        child.communicate(b"\n", timeout=60)
    thread.join(60)
    said = handler.said[0]
    assert "\x1b" not in said and "\x07" not in said, said
    # (as bash reads it back: $'…', mount52)
    assert said.endswith(r"holder.py $'./r\x1b]0;owned\x07\x1b[2J'); waiting for it"), said


def _forged(folder, stem: str, record: dict, pid: int = 4242) -> None:
    path = os.path.join(folder, f"{stem}.{OTHER_TAG}-{pid}.who")
    with open(path, "w") as fh:
        json.dump(record, fh)


@pytest.mark.parametrize("since", [1e300, float("nan"), -1e300, 10 ** 30])
def test_a_holder_file_with_a_time_no_clock_has_is_passed_over(tmp_path, since):
    """``since`` out of any clock's range: the waiting push ended in OverflowError or
    ValueError from ``time.gmtime`` (a traceback where a wait message was due)."""
    _forged(str(tmp_path), "tree-x.lock", {"pid": 1, "host": "h", "command": "c",
                                           "since": since})
    _forged(str(tmp_path), "tree-x.lock", {"pid": 2, "host": "h2", "command": "drivestage push",
                                           "since": 1764900000.0}, pid=2)

    said = lock_holders.described(str(tmp_path), "tree-x.lock")

    assert said == " (pid 2 on h2, since 2025-12-05 02:00:00 UTC: drivestage push)"


def test_a_forged_holder_file_s_host_and_command_are_shown_escaped(tmp_path):
    _forged(str(tmp_path), "tree-x.lock", {"pid": 7, "host": "h\x1b[31m", "since": 1764900000,
                                           "command": "x\u202ey\r\nz" + "q" * 1000})

    said = lock_holders.described(str(tmp_path), "tree-x.lock")

    assert re.fullmatch(r" \(pid 7 on h\\x1b\[31m, since 2025-12-05 02:00:00 UTC: "
                        r"x\\u202ey\\x0d\\x0az" + "q" * 193 + "…\\)", said), said
