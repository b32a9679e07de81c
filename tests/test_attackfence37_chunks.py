"""attackfence37: an update in place is committed by its upload's *last* chunk, not its first.
A holder of the run's lease whose checkpoint goes in place (a shared drive's Contributor: it
deletes nothing, so a push and a lone send update the pair in place) checked its lease
before the upload began; a checkpoint of more than one chunk (64 MiB by default: any real
model's) is sent in many requests, minutes apart on a slow uplink. Asleep between two chunks
(a laptop's lid closed: SIGSTOP here) while a new trainer took the stale lease over and
updated the pair in place with its own, woken, it sent the rest and its last chunk wrote its
bytes over the new holder's checkpoint: Drive held its checkpoint under the new holder's
sidecar, which vouches for other bytes (the pair unverified; the run's newest checkpoint
lost to every resume). The guard is asked between chunks, so the window is one chunk's
request, as at every other commit point. A child process holds the lease and stops itself
between two chunks; the real PyDrive2 stack against the emulator; real checkpoint files."""
from __future__ import annotations

import os

import pytest

from _lease_pairs import holder_script, save_pair, woken_after_a_take_over

NAME = "epoch_001.pt"
VALUES = 1 << 18   # (a checkpoint of 4 chunks of 256 KiB and a bit)
CHUNK = 256 * 1024

CHILD = holder_script("""
    sent = folder._store.upload

    def upload(path, parent, name, **k):   # (the checkpoint in place, in 256 KiB chunks)
        if name == "epoch_001.pt" and k.get("replace") is not None:
            k["chunk_size"] = %d
            inner = k.get("progress")

            def progress(n):   # (asleep once its first chunk was kept)
                if not asleep:
                    asleep.append(1)
                    os.kill(os.getpid(), signal.SIGSTOP)
                if inner is not None:
                    inner(n)
            k["progress"] = progress
        return sent(path, parent, name, **k)

    folder._store.upload = upload
""" % CHUNK)


@pytest.mark.parametrize("how", ["push", "alone"])
def test_asleep_between_two_chunks_of_an_update_in_place_it_writes_nothing_once_woken(
        drive_env, emulator, tmp_path, how):
    from trainer.drive import DriveFolder

    team = emulator.add_shared_drive("Team", role="writer")
    emulator.add_folder("run", drive_id=team)
    dest = "drive:shared/Team/run"
    first = tmp_path / "first"
    save_pair(first, NAME, 1.0, 1000.0, values=VALUES)
    DriveFolder(dest, str(first)).push()   # (the run's pair there, before the sleep)
    save_pair(tmp_path / "old", NAME, 1.5, 1500.0, values=VALUES)
    for pair in (first, tmp_path / "old"):   # (the new holder's: as large)
        assert os.path.getsize(pair / NAME) > 2 * CHUNK
    out = woken_after_a_take_over(emulator, tmp_path, CHILD, dest, how, values=VALUES)
    assert out.strip() == "failed LeaseLostError"
