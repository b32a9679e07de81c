"""attacklease36: a holder of the run's lease that was silent past the lease in the middle of
a push (a machine asleep, a process stopped: SIGSTOP) while a new trainer took the stale lease
over and pushed the same names (it resumed the run from Drive and saved the same epoch). Woken
(SIGCONT), the old holder's push, whose lease check passed before it slept, goes on: what does
it replace on Drive? A child process holds the lease and pushes; a hook in it stops it
(SIGSTOP, itself) right after the push's lease check passed, before any upload; the test
takes the stale lease over with a RunLease of its own, pushes its own pair of those names,
then wakes the child. The real PyDrive2 stack against the emulator; real checkpoint files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

DEST = "drive:runs/exp"
NAME = "epoch_001.pt"

CHILD = textwrap.dedent("""
    import os, signal, sys, threading
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    folder = DriveFolder(sys.argv[1], sys.argv[2])
    lease = RunLease(folder, period_s=0.6)
    lease.acquire()
    folder.lease = lease.start()
    checked = lease.check
    asleep = []

    def check():
        checked()
        if threading.current_thread() is threading.main_thread() and not asleep:
            asleep.append(1)
            os.kill(os.getpid(), signal.SIGSTOP)   # (asleep right after the check passed)

    store = folder._store
    sent = store.upload

    def upload(*a, **k):   # (asleep at its first file, the push planned against Drive)
        if not asleep:
            asleep.append(1)
            os.kill(os.getpid(), signal.SIGSTOP)
        return sent(*a, **k)

    if sys.argv[3] == "check":
        lease.check = check
    else:
        store.upload = upload
    try:
        folder.push()
        print("pushed", flush=True)
    except Exception as exc:
        print("failed", type(exc).__name__, exc, flush=True)
    lease.release()
""")


def _pair(folder, weight: float, saved: float) -> str:
    import torch

    from trainer import checkpoint as ckpt

    os.makedirs(folder, exist_ok=True)
    state = {"format_version": ckpt.FORMAT_VERSION,
             "model": {"w": torch.full((1 << 16,), weight)}, "optimizer": {}, "epoch": 1,
             "iteration": 3, "epoch_iteration": 3, "config": {}, "run": "r1"}
    return ckpt.save_checkpoint(state, os.path.join(folder, NAME), saved=saved)


def _on_drive(emulator) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in emulator.files():
        if not f["labels"]["trashed"] and f["title"].startswith("epoch_"):
            out.setdefault(f["title"], []).append(f.get("md5Checksum", ""))
    return out


@pytest.mark.parametrize("at", ["check", "upload"])
def test_a_holder_woken_after_a_stale_take_over_replaces_nothing_the_new_holder_pushed(
        drive_env, emulator, tmp_path, at):
    from drivestage.localfs import file_md5
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    _pair(old_dir, 1.0, 1000.0)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
               DRIVESTAGE_STATE_DIR=str(tmp_path / "state-old"))
    child = subprocess.Popen([sys.executable, "-c", CHILD, DEST, str(old_dir), at], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(child.pid, os.WUNTRACED)   # asleep after its check
        assert os.WIFSTOPPED(status), status
        # The new runtime: the old claim is renewed no more; taken over once stale.
        new = RunLease(DriveFolder(DEST, str(new_dir)), period_s=0.6)
        new.acquire()
        mine = _pair(new_dir, 2.0, 2000.0)   # resumed from Drive, saved the same epoch
        folder = DriveFolder(DEST, str(new_dir))
        folder.lease = new
        folder.push()
        ours = {NAME: file_md5(mine), "epoch_001.json": file_md5(str(new_dir / "epoch_001.json"))}
        assert {n: m for n, ms in _on_drive(emulator).items() for m in ms} == ours
        os.kill(child.pid, signal.SIGCONT)
        out, _ = child.communicate(timeout=120)
        new.release()
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
            child.wait()
    # What the trainer holding the lease pushed is what Drive holds, alone.
    assert _on_drive(emulator) == {n: [m] for n, m in ours.items()}, (out, _on_drive(emulator))
