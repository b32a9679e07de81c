"""Nested pushes into folders deeper than the climb for their locks went (attackz27).

A push holds the locks of the folders above its own (:func:`drivestage.locks.tree_lock`),
read up to :data:`drivestage.drive.folders.MAX_DEPTH` of them. That was 64, while My Drive
and shared drives nest folders 100 deep: a push into a folder 70 deep left out the
folders at the top, and a push into one of them at once (a mirror of the whole tree) did not
wait for it: each file below made twice."""
from __future__ import annotations

from test_push27_nested import _live_in, _two_at_once
from test_push_safety import _md5, _no_duplicates, _run_tree

DEPTH = 70


def test_a_push_into_a_folder_70_deep_waits_for_a_push_into_the_top_one(
        emulator, local_state, monkeypatch):
    below = "/".join(["d"] * (DEPTH - 1))
    emulator.add_folder(f"top/{below}/tb/deep")
    deep = emulator.find(f"top/{below}")["id"]
    mirror = local_state / "top"
    files = _run_tree(mirror.joinpath(*below.split("/")))
    said = _two_at_once(emulator, monkeypatch, (str(mirror), "drive:top"),
                        (str(mirror.joinpath(*below.split("/"))), f"drive:top/{below}"))
    assert _no_duplicates(emulator) == {}
    assert _live_in(emulator, deep) == {k: _md5(v) for k, v in files.items() if "/" not in k}
    assert said == [f"another push into drive:top, which holds drive:top/{below}, is running "
                    "in this process; waiting for it"]
