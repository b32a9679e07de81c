"""attackc52: ``push --delete`` and a Drive folder whose title no local folder can have.

Before its removals, a push lists SRC's folders again (:func:`drivestage.push_spared.
written_since`): what ``--delete`` decided to remove at a path its walk did not see stays
where SRC holds it now. With ``--include``/``--exclude``, a Drive folder SRC lacks goes file by
file (what the filters leave out stays), so SRC's folder of that Drive title is listed. A
title with a NUL or half a surrogate pair (Drive's JSON carries either) raised ValueError
in the listing's thread: a traceback (``Exception in thread drivestage-src-again``), every
folder listed after it unknown; one longer than 255 bytes failed (ENAMETOOLONG) and was
taken for a mount that stopped. On main the file was left at every push, with a warning
that SRC's folder "could not be listed again (… a mount that stopped?)": no ``push
--delete`` could ever remove it. No local folder has such a name: it is gone from SRC."""
from __future__ import annotations

import logging
import threading

import pytest

from drivestage.upload_tree import push


def _live(emulator, folder_id):
    return {f["title"] for f in emulator.files() if not f.get("labels", {}).get("trashed")
            and any(p["id"] == folder_id for p in f.get("parents", ()))}


@pytest.mark.parametrize("title", ["nul\x00name", "half\ud800", "x" * 300],
                         ids=["nul", "surrogate", "too_long"])
def test_push_delete_removes_what_a_folder_no_local_name_can_be_holds(
        emulator, store, local_state, monkeypatch, caplog, title):
    src = local_state / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    folder = emulator.add_folder(f"runs/{title}")
    emulator.add_file(f"runs/{title}/keep.log", b"log")
    emulator.add_file(f"runs/{title}/f.txt", b"f")
    crashes: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(args.exc_value))
    caplog.set_level(logging.INFO, "drivestage.upload_tree")
    result = push(str(src), "runs", store=store, delete=True, exclude=["*.log"])
    assert crashes == []
    assert result.deleted == [f"{title}/f.txt"]
    assert _live(emulator, folder) == {"keep.log"}   # (the filters leave it out: it stays)
    assert not [m for m in caplog.messages if "could not be listed again" in m]
