"""A run folder marked through a Drive mount: the file ``<run folder>/.drivestage/run-folder``.

A run pushed through a mount of Drive (Colab's ``/content/drive``: ``push ./runs/exp1
/content/drive/MyDrive/runs/exp1``, or the trainer's ``drive.logs`` there) is a push to a
directory, which marks its run folder by that file (:mod:`drivestage.local_marks`); the mount
syncs it to Drive as a folder ``.drivestage`` holding a file ``run-folder``, and no property.
Another machine's ``push ./runs drive:runs --delete``, whose ``runs`` lacked ``exp1``, saw
no mark and trashed the run folder, its checkpoints with it (``--delete-permanently``:
deleted; attackpull35). On Drive such a folder counts as marked wherever the property does
(:meth:`drivestage.drive.store_folders.FolderMaking.run_marked`; the re-check just before a
folder is removed reads it and every folder inside it again: :mod:`drivestage.drive.marks_below`).
Asked only of folders a ``--delete`` considers: one ``files.list`` (by name) per folder, one
more where it holds a ``.drivestage`` folder; a plain push asks none.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from drivestage.drive.resources import FOLDER_MIME
from drivestage.local_marks import MARK
from drivestage.paths import STATE_DIR
from drivestage.store import RemoteEntry

#: The store's listing of a folder's children by exact name (``_children``).
Children = Callable[[str, str, Optional[str]], list[dict[str, Any]]]


def marked(children: Children, folder: RemoteEntry, where: str) -> bool:
    """Whether the Drive folder ``folder`` holds a folder ``.drivestage`` holding a file
    ``run-folder`` (trashed items are not listed). A state folder itself is not asked (no
    run's folder: --delete met one in each run folder it counted, a listing each)."""
    return folder.name != STATE_DIR and bool(files(children, folder, where))


def files(children: Children, folder: RemoteEntry, where: str) -> list[dict[str, Any]]:
    """The mark files in ``folder`` (its ``.drivestage/run-folder``: none, one, a duplicate)
    as listed: ``drivestage runs forget`` trashes them, else the folder stays marked."""
    return [item for state in children(folder.id, where, STATE_DIR)
            if state.get("mimeType") == FOLDER_MIME and isinstance(state.get("id"), str)
            for item in children(state["id"], f"{where}/{STATE_DIR}", MARK)
            if item.get("mimeType") != FOLDER_MIME]

