"""What is on the emulated Drive, as tests assert it."""
from __future__ import annotations


def live_md5s(emu, folder: str) -> dict:
    """name -> sorted md5s of the live (untrashed) files directly in ``folder``."""
    top = emu.find(folder)["id"]
    out: dict = {}
    for f in emu.files():
        if f["labels"]["trashed"] or not any(p["id"] == top for p in f.get("parents") or []):
            continue
        out.setdefault(f["title"], []).append(f.get("md5Checksum"))
    return {k: sorted(v, key=str) for k, v in out.items()}


def mark_value(emu, file_id: str, seen: float, came: float) -> str:
    """The first-seen mark a pass that saw ``file_id`` (as it is now, where it is now) first
    at ``seen``, when Drive's dates said it arrived at ``came``, wrote
    (:func:`drivestage.first_seen.stamp`)."""
    from drivestage import first_seen
    from drivestage.store import RemoteEntry
    rec = emu.store.get(file_id)
    entry = RemoteEntry(file_id, rec["title"], False, rec.get("size") or 0, rec.get("md5"),
                        modified=came, parent_id=(rec.get("parents") or [None])[0])
    return first_seen.stamp(entry, seen)


def held_since(emu, file_id: str, when: float, *, seen: bool = True) -> None:
    """Drive received ``file_id`` at ``when`` (its createdDate and modifiedDate, as Drive
    stamps them on arrival) and, with ``seen``, a retention pass first saw it then (its
    first-seen mark, :mod:`drivestage.first_seen`, as that pass wrote it)."""
    if seen:   # (first: a files.patch of properties is a change, dated now)
        emu.set_properties(file_id, [{"key": "drivestage-seen", "visibility": "PUBLIC",
                                      "value": mark_value(emu, file_id, when, when)}])
    emu.store.update(file_id, created=when, modified=when)
