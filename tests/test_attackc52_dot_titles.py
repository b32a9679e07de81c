"""attackc52: ``push --delete --exclude …`` and a Drive folder titled ``..`` or ``.``.

With ``--include``/``--exclude``, a Drive folder SRC lacks goes file by file, and before
removing, the push lists SRC's folder of that name again (:func:`drivestage.push_spared.
written_since`: what was written into SRC since its walk stays). For a folder titled ``..``
it listed the folder above SRC, for ``.`` SRC itself: a file there of the same name as one
in that Drive folder kept it on the store at every push, said as ``left drive:runs/../f.txt
on the store: SRC holds it now, written after this push read SRC`` (main). No folder of SRC
has such a name: what ``--delete`` decided there goes."""
from __future__ import annotations

import logging

import pytest

from drivestage.upload_tree import push


def _live(emulator, folder_id):
    return {f["title"] for f in emulator.files() if not f.get("labels", {}).get("trashed")
            and any(p["id"] == folder_id for p in f.get("parents", ()))}


@pytest.mark.parametrize("title", ["..", "."], ids=["dotdot", "dot"])
def test_push_delete_does_not_read_a_dot_title_as_a_folder_of_src(
        emulator, store, local_state, caplog, title):
    src = local_state / "src"
    src.mkdir()
    (src / "f.txt").write_text("in SRC, at its top")
    (local_state / "f.txt").write_text("beside SRC, outside it")
    folder = emulator.add_folder(f"runs/{title}")
    emulator.add_file(f"runs/{title}/keep.log", b"log")
    emulator.add_file(f"runs/{title}/f.txt", b"f")
    caplog.set_level(logging.INFO, "drivestage.upload_tree")
    result = push(str(src), "runs", store=store, delete=True, exclude=["*.log"])
    assert result.deleted == [f"{title}/f.txt"]
    assert _live(emulator, folder) == {"keep.log"}   # (the filters leave it out: it stays)
    assert not [m for m in caplog.messages if m.startswith("left ")]
