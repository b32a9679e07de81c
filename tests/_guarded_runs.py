"""What the guard tests share (removalfence39, guards40, attackguard40): the removal
requests a guard stands before, the error a refusing guard raises, a run folder on Drive
seeded with extra files, and the titles in a folder, live or in the trash."""
from __future__ import annotations

from pathlib import Path

#: The requests that remove an item.
REMOVALS = ("files.delete", "files.trash")


class Refused(Exception):
    """A guard's refusal (the lease another trainer's now)."""


def titles_in(emulator, folder: str, *, trashed: bool) -> list[str]:
    """The titles of ``folder``'s items on the emulator, those in the trash or the live ones."""
    top = emulator.find(folder)["id"]
    return sorted(f["title"] for f in emulator.files() if f["labels"]["trashed"] == trashed
                  and any(p["id"] == top for p in f.get("parents") or []))


def run_with_extras(emulator, tmp_path: Path, names) -> Path:
    """A local run folder holding keep.txt, pushed to drive:runs/exp, where ``names`` are
    then added beside it (files that are not local: what --delete removes)."""
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    (src / "keep.txt").write_text("kept")
    push(str(src), "drive:runs/exp", jobs=1)
    for name in names:
        emulator.add_file(f"runs/exp/{name}", name.encode())
    return src
