"""attacklease42: a trainer's claim file moved, with its run's files, into the folder the
run's path leads to now (the old folder renamed, a new one made at the path and the files
dragged there by hand, or by a tool).

The claim follows the path (attackpush41): the trainer's check found its folder without its
claim, went to the path's folder, and removed "its claim in the old folder", the very file
it had just listed there. Renewed a moment before, the check wrote nothing more: the run
held no claim on Drive while its guard let its pushes through (sure_s, 2 min by default),
and a trainer started at the path meanwhile took the lease: both pushed into one folder.
The claim found there is kept now, and renewed in place.
The real DriveFolder and RunLease (PyDrive2 stack) against the emulator."""
from __future__ import annotations

from _lease_pairs import save_pair
from tests.test_attackpush41_lease_folder import _started


def test_a_claim_moved_into_the_paths_new_folder_is_kept(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    from trainer.lease import release_all

    save_pair(tmp_path / "a", "epoch_001.pt", 1)
    a, lease_a = _started(emulator, tmp_path, monkeypatch, "a")
    try:
        a.push()
        old = emulator.find("runs/exp")["id"]
        emulator.store.update_meta(old, {"title": "exp_old"})
        new = emulator.add_folder("runs/exp")
        for f in emulator.files():
            if [p["id"] for p in f["parents"]] == [old]:
                emulator.store.update_meta(f["id"], {}, add_parents=[new], remove_parents=[old])
        save_pair(tmp_path / "a", "epoch_002.pt", 2)
        a.push()
        claims = [f for f in emulator.files() if f["title"] == lease_a.name
                  and not f["labels"]["trashed"]]
        assert [[p["id"] for p in f["parents"]] for f in claims] == [[new]]
        assert lease_a.lost is None
        holder = lease_a.holder()   # (what a trainer started at the path now reads)
        assert holder is not None and holder.owner == lease_a.token
    finally:
        release_all()
