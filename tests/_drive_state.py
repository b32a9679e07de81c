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
