"""What the run's-lease tests (lease36, fence37) share: a trainer's checkpoint pair saved as
the trainer saves it, what Drive holds of the run's checkpoints, the requests a push made,
and a holder of the lease asleep (SIGSTOP) while a new trainer takes the stale lease over."""
from __future__ import annotations

import os
import signal
import textwrap
import time
from collections import Counter
from typing import Optional

SIDECAR = ".json"

_HOLDER = """\
import os, signal, sys, threading
from trainer.drive import DriveFolder
from trainer.lease import RunLease

dest, local, how, *args = sys.argv[1:]
folder = DriveFolder(dest, local)
lease = RunLease(folder, period_s=0.6)
lease.acquire()
folder.lease = lease.start()
asleep = []
"""

_SEND = """
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
"""


def holder_script(hooks: str) -> str:
    """A child's program, ``python -c PROGRAM DEST LOCAL HOW ARGS...``: it holds the run's
    lease on DEST (a 0.6 s period), runs ``hooks`` (``folder``, ``lease``, ``asleep``, an
    empty list, and ``args`` defined), then sends LOCAL's epoch_001 pair (HOW: ``push``, or
    ``alone``: DriveFolder.send_alone) and prints ``sent`` or ``failed`` and the error's
    type."""
    return _HOLDER + textwrap.dedent(hooks) + _SEND


def save_pair(folder, name: str, weight: float, saved: Optional[float] = None,
              values: int = 64) -> dict[str, str]:
    """A real checkpoint ``name`` (epoch 1, iteration 3 of run r1: a model of ``values``
    floats ``weight``) and its sidecar, saved in ``folder`` at ``saved`` (1000 + ``weight``
    by default), as the trainer saves them. Returns the pair's md5s by name."""
    import torch

    from drivestage.localfs import file_md5
    from trainer import checkpoint as ckpt

    os.makedirs(folder, exist_ok=True)
    state = {"format_version": ckpt.FORMAT_VERSION,
             "model": {"w": torch.full((values,), weight)}, "optimizer": {}, "epoch": 1,
             "iteration": 3, "epoch_iteration": 3, "config": {}, "run": "r1"}
    path = ckpt.save_checkpoint(state, os.path.join(folder, name),
                                saved=1000.0 + weight if saved is None else saved)
    side = os.path.splitext(path)[0] + SIDECAR
    return {name: file_md5(path), os.path.basename(side): file_md5(side)}


def on_drive(emulator) -> dict[str, list[str]]:
    """name -> sorted md5s of the live checkpoints and sidecars (``epoch_*``) on Drive."""
    out: dict[str, list[str]] = {}
    for f in emulator.files():
        if not f["labels"]["trashed"] and f["title"].startswith("epoch_"):
            out.setdefault(f["title"], []).append(f.get("md5Checksum", ""))
    return {n: sorted(ms) for n, ms in out.items()}


def request_kinds(records) -> Counter:
    """The emulator's request ``records`` counted: listings, uploads, the rest."""
    out: Counter = Counter()
    for r in records:
        if r.method == "GET" and r.path.rstrip("/").endswith("/files") and "q" in r.query:
            out["list"] += 1
        elif "/upload/" in r.path:
            out["upload"] += 1
        else:
            out["other"] += 1
    return out


def _stopped(pid: int) -> bool:
    """Whether process ``pid`` is stopped (SIGSTOP): its state in /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False


def woken_after_a_take_over(emulator, tmp_path, child: str, dest: str, *args: str,
                            values: int = 64) -> str:
    """``python -c child dest OLD args`` holds the run's lease on ``dest`` and sends the pair
    in ``tmp_path/old`` (saved there by the caller), and stops itself (SIGSTOP) at the hook
    the test put in it; the new holder takes the stale lease over, saves its own pair of
    those names (``values`` floats) and pushes it; the child is woken. Drive holds the new
    holder's pair alone, before the wake and after it. The child's output."""
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    from _forkcli import PIPE, cli_server

    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    env = dict(os.environ, DRIVESTAGE_STATE_DIR=str(tmp_path / "state-old"))
    # (forked with drivestage imported, tests/_forkcli.py: a fresh interpreter's start was a
    # quarter of each test; the child is not this process's, so its stop is read in /proc)
    proc = cli_server().popen([dest, str(old_dir), *args], script=child, env=env, stdout=PIPE,
                              text=True)
    try:
        deadline = time.monotonic() + 120
        while not _stopped(proc.pid):   # asleep at its hook
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the child never stopped at its hook"
            time.sleep(0.005)
        # The new runtime: the old claim is renewed no more; taken over once stale.
        new = RunLease(DriveFolder(dest, str(new_dir)), period_s=0.6)
        new.acquire()
        ours = save_pair(new_dir, "epoch_001.pt", 2.0, 2000.0, values)   # (resumed from
        folder = DriveFolder(dest, str(new_dir))                         # Drive: same epoch)
        folder.lease = new
        folder.push()
        assert {n: m for n, ms in on_drive(emulator).items() for m in ms} == ours
        proc.send_signal(signal.SIGCONT)
        out, _ = proc.communicate(timeout=120)
        new.release()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()
    # What the trainer holding the lease pushed is what Drive holds, alone.
    assert on_drive(emulator) == {n: [m] for n, m in ours.items()}, (out, on_drive(emulator))
    return out
