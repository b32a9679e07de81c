"""A subfolder of a mirror's DEST trashed between its periods (leftovers40). The next period
made it anew and sent its files there without a word, as on a first push, where DEST (or a
folder above it) trashed so is said (``folders.say_gone``): the user who trashed it reads
why it is back, and that a copy of what it held is in the trash. Said once, as DEST's is."""
from __future__ import annotations

import logging

import pytest

from drivestage.mirror import Mirror

GONE = ("{where} is no longer at its path on Drive (moved, renamed, trashed or deleted since "
        "this process last pushed there); making it anew and sending everything to it: put "
        "the folder back first to keep one copy")


@pytest.mark.parametrize("before", ["made by the mirror", "there before it"])
def test_a_subfolder_trashed_between_periods_is_said_once(emulator, store, tmp_path, caplog,
                                                          before):
    src = tmp_path / "logs"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "results.csv").write_bytes(b"epoch\n1\n")
    (src / "sub" / "a.txt").write_bytes(b"a")
    (src / "sub" / "deeper" / "c.txt").write_bytes(b"c")
    if before == "there before it":   # (a run resumed: another process pushed there)
        from drivestage.drive import connect
        from drivestage.upload_tree import push

        push(str(src), (connect(api_root=emulator.url, token="test-token"), "runs/logs"),
             jobs=1)
    m = Mirror(str(src), (store, "runs/logs"), None).start()
    try:
        m.flush(60)
        m.flush(60)   # (a period that finds it by listing, as every one after the first)
        folder = emulator.find("runs/logs/sub")["id"]
        emulator.store.set_trashed(folder, True)
        (src / "sub" / "b.txt").write_bytes(b"b")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            m.flush(60)
            m.flush(60)
    finally:
        m.stop(60)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert said == [GONE.format(where="drive:runs/logs/sub")]
    assert emulator.find("runs/logs/sub")["id"] != folder
    assert sorted(f["title"] for f in emulator.files() if not f["labels"]["trashed"]
                  and f["mimeType"] != "application/vnd.google-apps.folder") == [
        "a.txt", "b.txt", "c.txt", "results.csv"]


def test_a_first_push_of_a_subfolder_says_nothing(emulator, store, tmp_path, caplog):
    """The folder the store never knew (a new subfolder of SRC): made without a word."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_bytes(b"epoch\n1\n")
    m = Mirror(str(src), (store, "runs/logs"), None).start()
    try:
        m.flush(60)
        (src / "sub").mkdir()
        (src / "sub" / "a.txt").write_bytes(b"a")
        with caplog.at_level(logging.WARNING):
            m.flush(60)
    finally:
        m.stop(60)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert emulator.find("runs/logs/sub/a.txt") is not None
