"""Deletions decided on a listing that no longer tells the truth (liar22): Drive's listings are
eventually consistent (the emulator's ``lag_listing``), and a listing may come from a cache.
An item renamed or moved away since it was listed is not the item the plan meant: a prune or
a push deletes it only while files.get (current on Drive) still shows it where and as it was
listed."""
from __future__ import annotations

import pytest

import _cli
from _envs import env_local_retries  # noqa: F401  (the env fixture)


def _checkpoints(emulator, folder: str, n: int = 3) -> dict[str, str]:
    return {f"epoch_{i:03d}.pt": emulator.add_file(f"{folder}/epoch_{i:03d}.pt", b"w" * i)
            for i in range(1, n + 1)}


def _live(emulator, folder: str) -> set[str]:
    rec = emulator.find(folder)
    return {c["title"] for c in emulator.store.children(rec["id"]) if not c.get("trashed")}


@pytest.mark.parametrize("how", ["renamed", "moved"])
def test_a_checkpoint_renamed_or_moved_away_since_the_listing_is_never_pruned(emulator, env,
                                                                              how):
    """The user renames epoch_001.pt to keep_me.pt (or moves it into Models/keep) to keep it;
    the listing still shows it as it was. Before: prune --keep-last 1 deleted it all the
    same, from its new name or its new folder."""
    ids = _checkpoints(emulator, "Models/logs")
    keep = emulator.add_folder("Models/keep")
    emulator.faults.lag_listing(updated=5)
    if how == "renamed":
        emulator.store.update_meta(ids["epoch_001.pt"], {"title": "keep_me.pt"})
    else:
        emulator.store.update_meta(ids["epoch_001.pt"], {}, add_parents=[keep],
                                   remove_parents=[emulator.find("Models/logs")["id"]])
    code, out, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert "Traceback" not in err
    assert not emulator.store.get(ids["epoch_001.pt"])["trashed"]
    assert emulator.read_bytes(ids["epoch_001.pt"]) == b"w"
    if how == "renamed":
        assert "keep_me.pt" in _live(emulator, "Models/logs")
    else:
        assert _live(emulator, "Models/keep") == {"epoch_001.pt"}
    assert "epoch_003.pt" in _live(emulator, "Models/logs")
