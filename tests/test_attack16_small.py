"""Two of four small robustness defects (sixteenth session): what a SIGKILL leaves between an
atomic write's temporary file and its rename, and a checkpoint and its sidecar written apart
(the other two, an infinite metric read from a name and a link at the upload claims file,
are messages: tests/test_messages_attack16.py).

Real processes, real signals, the real stack against the emulator: each kill is a SIGKILL
(or a SIGSTOP: a process alive but not moving) at the exact audit event named, nothing of
drivestage or the trainer replaced."""
from __future__ import annotations

import hashlib
import os
import signal
import time

import pytest

import drivestage
from _cli import child_env, run
from _forkcli import PIPE, Child, cli_server
from _signal_env import _cli_server  # noqa: F401  (the fork server, started before the leak check)

#: ``drivestage ARGS`` in a child that sends itself ``KILL_WITH`` (default SIGKILL) at the
#: ``n``-th audit event ``event`` whose arguments' repr holds ``needle``: the hook runs just
#: before the operation, so at an ``os.rename`` the temporary file exists and is not renamed.
KILLER = r"""
import os, signal, sys
event, needle, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sig = getattr(signal, os.environ.get("KILL_WITH", "SIGKILL"))
seen = [0]

def hook(name, args):
    if name == event and needle in repr(args):
        seen[0] += 1
        if seen[0] == n:
            os.kill(os.getpid(), sig)

sys.addaudithook(hook)
sys.argv = ["drivestage"] + sys.argv[4:]
from drivestage.entry import main
main()
"""


def _drivestage_killed_at(emulator, event: str, needle: str, *args: str,
                          kill_with: str = "SIGKILL") -> Child:
    env = dict(child_env(emulator), KILL_WITH=kill_with)
    return cli_server().popen([event, needle, "1", *args], script=KILLER, env=env,
                              stdout=PIPE, stderr=PIPE)


def _temps(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] == "T"


# --- 1. an atomic write's temporary file, left by a kill before its rename ----------------

def test_a_stamp_write_killed_before_its_rename_leaves_a_temporary_the_next_pull_removes(
        emulator, drive_env, local_state, tmp_path):
    """A pull SIGKILLed between its stamp's temporary file and the rename leaves the file in
    DEST/.drivestage; a push of DEST never uploads it, and the next pull into DEST (of
    another file) removes it."""
    a, b = os.urandom(3000), os.urandom(2000)
    emulator.add_file("d/a.bin", a)
    emulator.add_file("d/b.bin", b)
    dest = tmp_path / "data"
    proc = _drivestage_killed_at(emulator, "os.rename", ".json'", "pull", "drive:d/a.bin",
                                 str(dest), "-q")
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = dest / ".drivestage"
    left = _temps(state)
    assert len(left) == 1 and left[0].startswith(".a.bin@"), left

    code, _, err = run("push", str(dest), "drive:up")
    assert code == 0, err
    assert not [f["title"] for f in emulator.files() if f["title"].endswith(".tmp")]

    drivestage.pull("drive:d/b.bin", str(dest))
    assert _temps(state) == []
    assert (dest / "b.bin").read_bytes() == b


def test_a_live_pulls_temporary_is_never_removed_by_another_pull(emulator, drive_env,
                                                                 local_state, tmp_path):
    """Two pulls into one DEST: one stopped (SIGSTOP) between its stamp's temporary file and
    the rename. The other's stamp write sweeps the folder but leaves the live process's file;
    continued, the first pull renames it into place and exits 0."""
    a, b = os.urandom(3000), os.urandom(2000)
    emulator.add_file("d/a.bin", a)
    emulator.add_file("d/b.bin", b)
    dest = tmp_path / "data"
    proc = _drivestage_killed_at(emulator, "os.rename", ".json'", "pull", "drive:d/a.bin",
                                 str(dest), "-q", kill_with="SIGSTOP")
    try:
        deadline = time.monotonic() + 30
        while not _stopped(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        state = dest / ".drivestage"
        left = _temps(state)
        assert len(left) == 1
        drivestage.pull("drive:d/b.bin", str(dest))
        assert _temps(state) == left
    finally:
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert _temps(state) == []
    assert drivestage.pull("drive:d/a.bin", str(dest)).action == "cached"


def test_the_sweep_removes_only_dead_processes_leftovers_of_its_own_form(tmp_path):
    """What an atomic write into a folder removes there: this namespace's temporary files
    whose process is gone; another namespace's (another machine sharing the folder) only
    once untouched for a day; never a live process's, another form's, nor a link."""
    from drivestage import localfs, temps

    gone = cli_server().popen([], script="")
    gone.wait()
    tag = temps.namespace_tag()
    other = "0badcafe" if tag != "0badcafe" else "0badcaff"
    names = {
        "dead": f".epoch_003.pt.{tag}-{gone.pid}.a1b2c3.tmp",
        "alive": f".epoch_004.pt.{tag}-{os.getppid()}.a1b2c3.tmp",
        "foreign fresh": f".epoch_005.pt.{other}-{gone.pid}.a1b2c3.tmp",
        "foreign old": f".epoch_006.pt.{other}-{gone.pid}.a1b2c3.tmp",
        "older form": ".epoch_007.pt.k3j4_x9q.tmp",
        "the user's": ".notes.tmp",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"half")
    old = time.time() - temps.FOREIGN_STALE_S - 60
    os.utime(tmp_path / names["foreign old"], (old, old))
    link = f".epoch_008.pt.{tag}-{gone.pid}.a1b2c3.tmp"
    os.symlink(names["the user's"], tmp_path / link)

    localfs.atomic_write(str(tmp_path / "epoch_009.json"), b"{}")
    left = set(os.listdir(tmp_path))
    assert left == {"epoch_009.json", link} | set(names.values()) - {
        names["dead"], names["foreign old"]}


# --- 2. a checkpoint and its sidecar, killed apart ----------------------------------------

#: A process (torch imported once) that forks a writer per moment: each saves epoch 1 as
#: ``last.pt`` + ``best.pt`` with the trainer's BackgroundWriter, then epoch 2, SIGKILLing
#: itself at a moment of epoch 2's save: ``event:needle`` (the first such file operation),
#: ``#n`` (the n-th), or ``#0`` (never; the count of operations is printed). Run again as
#: ``WRITER BASE --later N``, it saves epoch 3 into each of the N folders (a later run).
WRITER = r"""
import os, signal, sys
base, moments = sys.argv[1], sys.argv[2:]
later = int(moments[1]) if moments[:1] == ["--later"] else None
import torch
from trainer.state import Position
from trainer.writer import BackgroundWriter, SaveJob

WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT

def job(epoch):
    state = {"format_version": 2, "model": {"w": torch.full((4000,), float(epoch))},
             "optimizer": {}, "epoch": epoch, "iteration": 10 * epoch, "epoch_iteration": 0,
             "config": {}, "run": "r1"}
    return SaveJob(state, ["last.pt", "best.pt"], Position(epoch, 10 * epoch, 0),
                   {"map50": epoch / 10})

def save(folder, epoch, moment=None):
    writer = BackgroundWriter(folder, None)
    seen = [0]
    if moment is not None:
        def hook(name, args):
            if name == "open" and not (isinstance(args[2], int) and args[2] & WRITE):
                return
            if name not in ("open", "os.rename", "os.remove", "os.chmod"):
                return
            seen[0] += 1
            if moment.startswith("#"):
                hit = seen[0] == int(moment[1:])
            else:
                event, needle = moment.split(":", 1)
                hit = name == event and needle in repr(args)
            if hit:
                os.kill(os.getpid(), signal.SIGKILL)
        sys.addaudithook(hook)
    writer.write_now(job(epoch))
    writer.close()
    return seen[0]

def forked(fn):
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1]

if later is not None:
    for i in range(later):
        assert forked(lambda: save(os.path.join(base, f"k{i}"), 3)) == 0
    sys.exit(0)
for i, moment in enumerate(moments):
    os.makedirs(os.path.join(base, f"k{i}"))
    def run(folder=os.path.join(base, f"k{i}"), moment=moment):
        save(folder, 1)
        print(save(folder, 2, moment), flush=True)
    status = forked(run)
    assert (status == signal.SIGKILL) == (moment != "#0"), (moment, status)
print("killed", flush=True)
"""

#: Where the lead saw it (between best.pt's rename and its sidecar), just before that rename,
#: and with a temporary file left: last.pt's (written, not renamed), best.json's.
_CHECKPOINT_MOMENTS = ["open:.best.json.", "os.rename:.best.pt.", "os.chmod:.last.pt.",
                       "os.rename:.best.json."]


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def _epoch_held(path) -> int:
    from trainer import checkpoint as ckpt

    return int(ckpt.load_checkpoint(str(path))["epoch"])


def _pairs_agree(folder, epochs) -> None:
    """Every sidecar in ``folder`` describes its checkpoint's bytes (md5, size, epoch); a
    checkpoint the trainer would resume from holds what its sidecar says."""
    from drivestage import sidecar as sidecars
    from trainer import checkpoint as ckpt

    for stem in ("last", "best"):
        held = _epoch_held(folder / f"{stem}.pt")
        assert held in epochs, (folder, stem)
        side = sidecars.read(str(folder / f"{stem}.json"))
        if side is not None:
            assert (side.epoch, side.md5, side.size) == (
                held, _md5(folder / f"{stem}.pt"), (folder / f"{stem}.pt").stat().st_size), \
                (folder, stem)
    for c in ckpt.list_checkpoints(str(folder)):
        assert _epoch_held(c.path) == c.sidecar.epoch, c.path


def _resumed_from_last(folder) -> None:
    """What a resume from ``last.pt`` (epoch 2, the best epoch) does to the run folder: a
    ``best.pt`` left undescribed by the kill becomes epoch 2's copy, with its sidecar."""
    from types import SimpleNamespace

    from trainer.resume import _repair_run_folder
    from trainer.state import Position

    assert _epoch_held(folder / "best.pt") == 1 and not (folder / "best.json").exists()
    run = SimpleNamespace(state=SimpleNamespace(pos=Position(2, 20, 0), history=[], run="r1"),
                          checkpointer=SimpleNamespace(best_epoch=2),
                          cfg=SimpleNamespace(train=SimpleNamespace(
                              out_dir=str(folder), save_period=100, epochs=100)))  # no epoch_002.pt
    _repair_run_folder(run, str(folder / "last.pt"))
    _pairs_agree(folder, (2,))
    assert (folder / "best.json").exists()


@pytest.mark.slow
def test_a_checkpoint_and_its_sidecar_killed_apart_never_disagree_and_leave_nothing(tmp_path):
    """The trainer saves epoch 2 over epoch 1 (``last.pt``, then its copy ``best.pt``),
    SIGKILLed at moments of that save (every file operation with DRIVESTAGE_TEST_SWEEP=all).
    Every sidecar left describes its checkpoint's bytes (before: ``best.json`` said epoch 1
    beside epoch 2's bytes); a checkpoint without one is undescribed, never a resume
    candidate, and a resume from the best epoch's state makes ``best.pt`` again. A later save into the folder (another process) removes the killed save's
    temporary files and leaves every pair describing epoch 3."""
    moments = list(_CHECKPOINT_MOMENTS)
    if os.environ.get("DRIVESTAGE_TEST_SWEEP") == "all":
        moments += [f"#{n}" for n in range(1, 19)]
    # The writer (a script, forked with torch imported: tests/_trainer_proc.py; a fresh
    # interpreter's torch import was most of this test), then the later run, its own process.
    from _trainer_proc import start_script

    script, out, err = tmp_path / "writer.py", tmp_path / "out", tmp_path / "err"
    script.write_text(WRITER)

    def writer(*args: str) -> int:
        proc = start_script(str(script), [str(tmp_path), *args], stdout=str(out),
                            stderr=str(err), env=dict(os.environ, OMP_NUM_THREADS="1"))
        try:
            return proc.wait(timeout=120)
        finally:
            proc.kill()

    assert writer(*moments) == 0, err.read_text()[-3000:]
    assert out.read_text().splitlines() == ["killed"], err.read_text()[-3000:]
    for i in range(len(moments)):
        _pairs_agree(tmp_path / f"k{i}", (1, 2))
    left = {m: _temps(tmp_path / f"k{i}") for i, m in enumerate(moments)}
    assert all(left[m] for m in _CHECKPOINT_MOMENTS[2:]), left
    _resumed_from_last(tmp_path / "k1")  # best.pt: epoch 1's bytes, undescribed
    assert writer("--later", str(len(moments))) == 0, err.read_text()[-3000:]
    for i in range(len(moments)):
        assert _temps(tmp_path / f"k{i}") == [], moments[i]
        _pairs_agree(tmp_path / f"k{i}", (3,))
        assert _epoch_held(tmp_path / f"k{i}" / "best.pt") == 3
