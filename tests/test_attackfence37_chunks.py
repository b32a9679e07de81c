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
import signal
import subprocess
import sys
import textwrap

import pytest

NAME, SIDE = "epoch_001.pt", "epoch_001.json"
CHUNK = 256 * 1024

CHILD = textwrap.dedent("""
    import os, signal, sys
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    dest, local, how = sys.argv[1:4]
    folder = DriveFolder(dest, local)
    lease = RunLease(folder, period_s=0.6)
    lease.acquire()
    folder.lease = lease.start()
    asleep = []
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
    try:
        if how == "push":
            folder.push()
        else:
            folder.send_alone([os.path.join(local, "epoch_001.pt"),
                               os.path.join(local, "epoch_001.json")])
        print("sent", flush=True)
    except Exception as exc:
        print("failed", type(exc).__name__, flush=True)
    lease.release()
""" % CHUNK)


def _pair(folder, weight: float, saved: float) -> dict[str, str]:
    import torch

    from drivestage.localfs import file_md5
    from trainer import checkpoint as ckpt

    os.makedirs(folder, exist_ok=True)
    state = {"format_version": ckpt.FORMAT_VERSION,   # (4 chunks of 256 KiB and a bit)
             "model": {"w": torch.full((1 << 18,), weight)}, "optimizer": {}, "epoch": 1,
             "iteration": 3, "epoch_iteration": 3, "config": {}, "run": "r1"}
    path = ckpt.save_checkpoint(state, os.path.join(folder, NAME), saved=saved)
    assert os.path.getsize(path) > 2 * CHUNK
    return {NAME: file_md5(path), SIDE: file_md5(os.path.join(folder, SIDE))}


def _on_drive(emulator) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in emulator.files():
        if not f["labels"]["trashed"] and f["title"].startswith("epoch_"):
            out.setdefault(f["title"], []).append(f.get("md5Checksum", ""))
    return out


@pytest.mark.parametrize("how", ["push", "alone"])
def test_asleep_between_two_chunks_of_an_update_in_place_it_writes_nothing_once_woken(
        drive_env, emulator, tmp_path, how):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    team = emulator.add_shared_drive("Team", role="writer")
    emulator.add_folder("run", drive_id=team)
    dest = "drive:shared/Team/run"
    first, old_dir, new_dir = tmp_path / "first", tmp_path / "old", tmp_path / "new"
    _pair(first, 1.0, 1000.0)
    DriveFolder(dest, str(first)).push()   # (the run's pair there, before the sleep)
    _pair(old_dir, 1.5, 1500.0)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
               DRIVESTAGE_STATE_DIR=str(tmp_path / "state-old"))
    child = subprocess.Popen([sys.executable, "-c", CHILD, dest, str(old_dir), how],
                             env=env, stdout=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(child.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), status
        new = RunLease(DriveFolder(dest, str(new_dir)), period_s=0.6)
        new.acquire()   # (once the child's claim is stale)
        ours = _pair(new_dir, 2.0, 2000.0)   # resumed from Drive, saved the same epoch
        folder = DriveFolder(dest, str(new_dir))
        folder.lease = new
        folder.push()
        assert {n: m for n, ms in _on_drive(emulator).items() for m in ms} == ours
        os.kill(child.pid, signal.SIGCONT)
        out, _ = child.communicate(timeout=120)
        new.release()
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
            child.wait()
    assert _on_drive(emulator) == {n: [m] for n, m in ours.items()}, (out, _on_drive(emulator))
    assert out.strip() == "failed LeaseLostError"
