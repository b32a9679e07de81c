"""polish21: what dedupe, prune, push and a resumed-on-purpose run tell the user, and what a
dedupe does when an item vanishes under it.

- ids from the server are anybody's text: printed escaped, like titles;
- dedupe says of each newer folder what happened to it (merged, or stays and why);
- an item deleted by someone else while dedupe ran is skipped and said, the rest merged,
  exit 1; a 404 for an item that is still there stops the run as before;
- a push into a new folder applies the autosave rule to what it sends;
- prune calls best.json the sidecar of best.pt, not "json without its checkpoint";
- "resumed on purpose" is logged once the record is on Drive, not before.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re

import pytest
from click.testing import CliRunner

from _messages import error_line
from _proxy import Proxy, Reply
from drivestage.cli import cli

from test_messages_dedupe import folder, live, md5, put, trashed

EVIL = "\x1b[2J\x1b]0;pwned\x07"


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def run(*args: str, api_root: str | None = None) -> tuple[int, str, str]:
    env = {"DRIVESTAGE_API_ROOT": api_root} if api_root else None
    r = CliRunner().invoke(cli, list(args), env=env)
    return r.exit_code, r.stdout, r.stderr


# --- 1. ids from a hostile server are printed escaped ----------------------------------------

def test_prune_reasons_from_a_sidecar_are_printed_escaped():
    """A reason names a run (a sidecar's text, anybody's): the table escapes it too."""
    from drivestage.retention_plan import Decision, format_plan

    table = format_plan([Decision("epoch_001.pt", False, f"an older run ({EVIL})", 10, "x",
                                  "checkpoint")])
    assert "\x1b" not in table and "an older run (\\x1b[2J" in table
