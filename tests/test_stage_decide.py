"""The pull decision is a pure function: every verb, without a store or a disk."""
from __future__ import annotations

import pytest

from drivestage.stage_file import Local, decide
from drivestage.store import RemoteEntry

ENTRY = RemoteEntry(id="F1", name="x.zip", is_dir=False, size=100, md5="a" * 32)
STAMP = {"id": "F1", "md5": "a" * 32, "size": 100, "mtime_ns": 7}
INTACT = Local(size=100, mtime_ns=7)


@pytest.mark.parametrize("stamp,local,extract,force,expected", [
    (STAMP, INTACT, False, False, "cached"),
    (STAMP, Local(100, 7, members_intact=True), True, False, "cached"),
    (STAMP, INTACT, True, False, "extract"),                  # a member went missing
    ({**STAMP, "id": "OLD"}, INTACT, False, False, "cached"),  # same bytes under a new id
    ({**STAMP, "md5": "b" * 32}, INTACT, False, False, "update"),
    ({**STAMP, "md5": "b" * 32}, Local(50, 1, partial=10), False, False, "resume"),
    (STAMP, Local(100, 8), False, False, "check"),            # touched since: hash it
    (STAMP, Local(100, 8, md5_ok=True), False, False, "verified"),
    (STAMP, Local(100, 8, md5_ok=False), False, False, "update"),
    (STAMP, Local(), False, False, "download"),               # the file was removed
    (None, Local(), False, False, "download"),
    (None, Local(partial=40), False, False, "resume"),
    (None, Local(100, 1), False, False, "check"),
    (None, Local(100, 1, md5_ok=True), True, False, "verified"),
    (None, Local(99, 1), False, False, "download"),
    (None, INTACT, False, True, "download"),                  # --force: never adopt, never resume
    (None, Local(partial=40), False, True, "download"),
])
def test_every_verb(stamp, local, extract, force, expected):
    assert decide(stamp, ENTRY, local, extract=extract, force=force) == expected


def test_a_file_without_md5_is_never_adopted_unchecked():
    entry = RemoteEntry(id="F1", name="x", is_dir=False, size=100, md5=None)
    assert decide(None, entry, Local(100, 1), extract=False) == "download"
