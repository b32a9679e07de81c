"""An item a deletion leaves alone because it changed on Drive since the listing (renamed or
moved away by the user to keep it: :func:`drivestage.drive.provenance.check_as_listed`) is
not reported as deleted: ``push --delete`` said ``1 deleted (not local)`` and ``prune``
counted it among the pruned, while Drive still held it."""
from __future__ import annotations

import _cli
from _envs import env_local_retries  # noqa: F401  (the env fixture)


def test_push_delete_does_not_say_it_deleted_a_file_renamed_since_the_listing(
        emulator, env, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    (src / "a.txt").write_bytes(b"kept locally")
    emulator.add_file("Models/run/a.txt", b"kept locally")
    old = emulator.add_file("Models/run/old.txt", b"only on Drive")
    emulator.faults.lag_listing(updated=5)
    emulator.store.update_meta(old, {"title": "keep_me.txt"})
    code, out, err = _cli.run("push", str(src), "drive:Models/run", "--delete")
    assert code == 0, err
    assert not emulator.store.get(old)["trashed"]
    assert emulator.read_bytes(old) == b"only on Drive"
    assert "renamed 'keep_me.txt' on Drive since it was listed; not deleted" in err
    assert "deleted (not local)" not in out + err
    assert "deleted old.txt" not in err


def test_a_push_does_not_count_a_checkpoint_renamed_since_the_listing_as_pruned(
        emulator, env, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    (src / "epoch_004.pt").write_bytes(b"w" * 4)
    ids = {i: emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", b"w" * i) for i in (1, 2, 3)}
    emulator.faults.lag_listing(updated=5)
    emulator.store.update_meta(ids[1], {"title": "keep_me.pt"})
    code, out, err = _cli.run("push", str(src), "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert emulator.read_bytes(ids[1]) == b"w"
    assert not emulator.store.get(ids[1])["trashed"]
    assert "renamed 'keep_me.pt' on Drive since it was listed; not deleted" in err
    assert "1 uploaded (4 B), 0 unchanged, 2 pruned" in err
