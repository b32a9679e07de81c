"""walk52: a push's listings after its uploads count against its walk's clock.

A push lists DEST before it sends anything, and again after its uploads (each folder it made
a new name in: a folder made at that name meanwhile: push_send._no_folder_since), then for
retention's removals. Only the first walk shared a clock (walk51); a listing after the
uploads had a bound of its own, so one whose page came past the bound (DEST's first listing
here: 0.15 s under a 0.12 s bound, the emulator's latency) was followed by the next as if
nothing happened (on main: exit 0). Now the push's every listing shares one: the listing
line, naming DEST, exit 1; the file sent before it is on Drive, verified.
"""
from __future__ import annotations

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _late_listing import first_listing_late, stopped_at_first_listing


def test_a_push_whose_first_listing_came_past_the_bound_lists_no_more(
        emulator, env, tmp_path, monkeypatch):
    emulator.add_file("logs/old.txt", b"o" * 10)
    src = tmp_path / "logs"
    src.mkdir()
    (src / "old.txt").write_bytes(b"o" * 10)
    (src / "new.txt").write_bytes(b"n" * 10)
    fid = first_listing_late(emulator, monkeypatch)
    code, _, err = run("push", str(src), "drive:logs")
    stopped_at_first_listing(emulator, fid, code, err)
    with open(emulator.store.blob_path(emulator.find("logs/new.txt")["id"]), "rb") as fh:
        assert fh.read() == b"n" * 10
