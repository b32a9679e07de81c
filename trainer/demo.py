"""``make demo``: the whole Colab recipe, offline, on a CPU, in a few minutes.

1. start ``drivestage emulator`` (a local Google Drive) on a temporary folder;
2. generate a synthetic VOC dataset and the zip the recipe expects;
3. upload the zip with ``drivestage push``;
4. ``trainer train --config configs/demo.yaml``: pulls and extracts the zip from "Drive",
   trains, mirrors checkpoints every ``save_period`` epochs and every ``save_minutes``
   (mid-epoch too) with retention;
5. once ``trainer status`` shows a checkpoint from the middle of an epoch on Drive, kill the
   training with SIGKILL (a vanished runtime);
6. start it again with ``--resume auto`` from an EMPTY local folder: only Drive has the state,
   and training continues at that checkpoint's iteration, in the middle of the epoch;
7. print mAP@0.5, where the predictions picture is, and what is on "Drive".

Every step is a real process talking HTTP to the emulator, as on Colab with Google Drive.

A SIGTERM, Ctrl-C or hang-up of the demo goes to the step under way (the training then saves
and verifies its checkpoint on the emulator's Drive, as ``trainer train`` does), then the
emulator stops and the demo exits 143, 130 or 129 with one line. Its processes have their own
process group: a Ctrl-C in the terminal reaches the demo alone, which passes it on once (it
used to reach the training twice, which stops at once at a second one, and the emulator,
which went before the training's save could reach it). Before, a SIGTERM left the emulator
(and the step under way) running after the demo had gone (stop29).
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Optional
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


#: The signals that stop the demo, and its exit codes (the shell's: 128 + the number).
STOP_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGHUP: 129}


class Stopped(BaseException):
    """A stop signal reached the demo: raised once the step it was passed to has ended (a
    BaseException: no ``except Exception`` of the steps takes it)."""


class _Steps:
    """The process of the step under way, and the stop signal the demo got (its handler
    only notes it and passes it on: an exception from a handler could land inside
    ``subprocess`` between its fork and its record of the child, which then ran on alone)."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self.current: Optional[subprocess.Popen] = None
        self.step = ""   # (the step under way: its number)
        self.work: Optional[Path] = None

    def handle(self, signum: int, frame: object) -> None:
        """The demo's handler of :data:`STOP_CODES`' signals: the step is sent the same signal
        (every time: a second one stops a training at once, without its save)."""
        if self.signum is None:
            self.signum = signum
        child = self.current
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    def check(self) -> None:
        """Raise :class:`Stopped` once a stop signal came."""
        if self.signum is not None:
            raise Stopped(self.signum)

    def start(self, args: list[str], env: dict, **kw) -> subprocess.Popen:
        """``Popen(args)`` in a process group of its own (a Ctrl-C in the terminal reaches
        the demo alone), as the step under way; given a stop signal that came meanwhile."""
        self.check()
        proc = subprocess.Popen(args, env=env, start_new_session=True, **kw)
        self.current = proc
        if self.signum is not None:   # (it came while the process started)
            proc.send_signal(self.signum)
        return proc

    def finish(self, proc: subprocess.Popen) -> int:
        """Wait for ``proc``; raise :class:`Stopped` when a stop signal came."""
        proc.wait()
        self.current = None
        self.check()
        return proc.returncode


STEPS = _Steps()


def _say(msg: str) -> None:
    STEPS.step = msg.split(".", 1)[0] if msg[:1].isdigit() else STEPS.step
    print(f"\n==> {msg}", flush=True)


def _run(args: list[str], env: dict, check: bool = True, show: bool = True,
         **kw) -> subprocess.CompletedProcess:
    if show:
        print("$ " + " ".join(args[2:] if args[:2] == [PY, "-m"] else args), flush=True)
    proc = STEPS.start(args, env, **kw)
    out, err = proc.communicate()
    code = STEPS.finish(proc)
    if check and code != 0:
        raise SystemExit(f"demo: step failed with exit code {code}: {' '.join(args)}")
    return subprocess.CompletedProcess(args, code, out, err)


def _run_teeing_stderr(args: list[str], env: dict) -> tuple[subprocess.CompletedProcess, str]:
    """Run ``args`` showing its stderr (progress bars included) as it comes; also return it."""
    print("$ " + " ".join(args[2:] if args[:2] == [PY, "-m"] else args), flush=True)
    proc = STEPS.start(args, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = bytearray()
    while True:
        chunk = os.read(proc.stderr.fileno(), 65536)
        if not chunk:
            break
        seen += chunk
        sys.stderr.buffer.write(chunk)
        sys.stderr.flush()
    out = proc.stdout.read().decode()
    STEPS.finish(proc)
    if proc.returncode != 0:
        raise SystemExit(f"demo: step failed with exit code {proc.returncode}: {' '.join(args)}")
    text = seen.decode(errors="replace").replace("\r", "\n")
    return subprocess.CompletedProcess(args, proc.returncode, out, text), text


def _start_emulator(data_dir: Path, env: dict) -> tuple[subprocess.Popen, str]:
    # (Its own process group: it stops last, once the training's stop save reached it.)
    proc = subprocess.Popen([PY, "-m", "drivestage", "emulator", "--data-dir", str(data_dir),
                             "--port", "0", "--token", env["DRIVESTAGE_TOKEN"]],
                            stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    line = proc.stdout.readline().strip()
    prefix = "Drive API emulator at "
    if not line.startswith(prefix):
        proc.kill()
        raise SystemExit(f"demo: the emulator did not start (said {line!r})")
    return proc, line[len(prefix):]


def _status(args: list[str], env: dict) -> dict | None:
    """``trainer status --json``: the newest checkpoint verified on Drive, or None."""
    res = _run([PY, "-m", "trainer", "status", *args, "--json"], env, check=False, show=False,
               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return json.loads(res.stdout) if res.returncode == 0 else None


def _wait_for_mid_epoch_checkpoint(logs: str, after_epoch: int, env: dict,
                                   proc: subprocess.Popen, timeout: float) -> dict:
    """Wait until Drive folder ``logs`` holds a verified checkpoint from the middle of an
    epoch after ``after_epoch``, or the trainer exits.

    It asks in this process what ``trainer status`` reports (the same functions): starting
    ``trainer status`` twice a second took most of a core from the training on 2 cores."""
    from trainer.drive import DriveFolder, newest_of_current_run

    os.environ.update(env)  # the emulator and the token, as the trainer has them
    folder = DriveFolder(logs, os.path.join(env["DRIVESTAGE_STATE_DIR"], "status"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None or STEPS.signum is not None:
            STEPS.finish(proc)   # (a stop signal: passed to the training; its save waited for)
            raise SystemExit(f"demo: training ended (exit {proc.returncode}) before a mid-epoch "
                             "checkpoint reached Drive")
        found = newest_of_current_run(folder.checkpoints())
        side = found.sidecar if found is not None else None
        if side is not None and (side.epoch or 0) >= after_epoch and side.epoch_iteration:
            return {"epoch": side.epoch, "iteration": side.iteration,
                    "epoch_iteration": side.epoch_iteration}
        time.sleep(0.5)  # polling a human-scale process, not papering over a race
    raise SystemExit(f"demo: no mid-epoch checkpoint reached Drive within {timeout:.0f} s")


#: Marks a folder the demo made, which a later demo may empty.
MARKER = ".trainer-demo"
#: ``make demo``'s folder (git-ignored): the demo's own, marked or not (demos before the marker).
DEFAULT_WORKDIR = REPO / "demo_out"


def _fresh_workdir(work: Path) -> Path:
    """``work`` emptied for the demo: only a folder an earlier demo made (it holds
    :data:`MARKER`) or an empty one; any other folder is left as it is (``--workdir .``
    used to delete the folder the user stood in). Held for the demo's life by a lock on its
    marker, which stays (its inode is the lock): a second ``make demo`` started while one
    ran emptied the folder under the first, its emulator's Drive and its run folders (ux35)."""
    ours = work == DEFAULT_WORKDIR or (work / MARKER).is_file()
    if work.exists() and not ours and (not work.is_dir() or any(work.iterdir())):
        raise SystemExit(f"demo: --workdir {work} already exists and was not made by the demo; "
                         "nothing was deleted: give a new or empty folder")
    work.mkdir(parents=True, exist_ok=True)
    fd = _HELD.get(work)
    if fd is None:   # (this process's own earlier demo there holds it already)
        fd = os.open(work / MARKER, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SystemExit(f"demo: another demo is running in {work}; nothing was deleted: "
                             "wait for it to end, or give this one a folder of its own (python "
                             "-m trainer.demo --workdir OTHER)") from None
        _HELD[work] = fd   # (until the demo ends: no step's process inherits it)
    for child in work.iterdir():
        if child.name != MARKER:
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    os.ftruncate(fd, 0)
    os.pwrite(fd, b"made by python -m trainer.demo; emptied by the next demo\n", 0)
    return work


#: The locks on the demo's folders (:func:`_fresh_workdir`), held while the demo runs.
_HELD: dict[Path, int] = {}


def release_workdirs() -> None:
    """Let the next demo have the folders this process's demo held."""
    while _HELD:
        os.close(_HELD.popitem()[1])


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code (a failed step exits with its message; a stop
    signal, 143, 130 or 129 once the step under way and the emulator have ended)."""
    STEPS.__init__()
    # (SIGHUP only where it is not ignored: under nohup the demo goes on, as asked.)
    before = {signum: signal.getsignal(signum) for signum in STOP_CODES}
    for signum in STOP_CODES:
        if signum != signal.SIGHUP or before[signum] is not signal.SIG_IGN:
            signal.signal(signum, STEPS.handle)
    try:
        return _demo(argv)
    except Stopped as stop:
        name = signal.Signals(stop.args[0]).name
        where = f"in step {STEPS.step} of 7" if STEPS.step else "as it started"
        made = f" (what they made is in {STEPS.work})" if STEPS.work is not None else ""
        sys.stderr.write(f"demo: stopped by {name} {where}; its processes have ended, the "
                         f"emulator too{made}\n")
        return STOP_CODES[stop.args[0]]
    finally:
        for signum, handler in before.items():
            if handler is not None:   # (None: set outside Python, left as it is)
                signal.signal(signum, handler)
        release_workdirs()   # (a next demo, in this process too, may take the folder)


def _demo(argv: list[str] | None) -> int:
    """:func:`main`'s steps."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=str(DEFAULT_WORKDIR),
                    help="where everything is written (a new or empty folder, or an earlier demo's, "
                         "which is emptied first)")
    ap.add_argument("--images", type=int, default=320, help="synthetic images")
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    ap.add_argument("--kill-after-epoch", type=int, default=8,
                    help="kill the training in a later epoch, once a checkpoint from its middle "
                         "is on Drive")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    work = _fresh_workdir(Path(args.workdir).resolve())
    STEPS.work = work
    env = dict(os.environ)
    env.update({"DRIVESTAGE_TOKEN": "demo-token", "DRIVESTAGE_STATE_DIR": str(work / "state"),
                "PYTHONUNBUFFERED": "1"})

    _say("1. A local Google Drive: drivestage emulator")
    emu, url = _start_emulator(work / "drive", env)
    env["DRIVESTAGE_API_ROOT"] = url
    print(f"Drive API emulator at {url} (data in {work / 'drive'})")
    try:
        STEPS.check()   # (one that came while the emulator started)
        _say("2. A synthetic VOC dataset and the zip the recipe uploads")
        _run([PY, "-m", "trainer", "synth-data", str(work / "synth"), "--images",
              str(args.images), "--classes", "4", "--zip"], env)
        zips = sorted((work / "synth").rglob("*.zip"))
        if not zips:
            raise SystemExit("demo: synth-data wrote no zip")
        upload = work / "upload"
        upload.mkdir()
        shutil.copy2(zips[0], upload / "synth.zip")

        _say("3. Upload it to Drive: drivestage push")
        _run([PY, "-m", "drivestage", "push", str(upload), "drive:VOC_datasets"], env)

        common = ["--config", str(REPO / "configs" / "demo.yaml"),
                  "--set", "data.drive_zip=drive:VOC_datasets/synth.zip",
                  "--set", "drive.logs=drive:Models/demo/logs"]
        if args.epochs:
            common += ["--set", f"train.epochs={args.epochs}"]

        _say("4. Train; checkpoints mirrored to drive:Models/demo/logs every save_period epochs "
             "and every save_minutes")
        run1 = ["--set", f"train.out_dir={work / 'runtime1' / 'logs'}",
                "--set", f"data.root={work / 'runtime1' / 'data'}"]
        cmd = [PY, "-m", "trainer", "train", *common, *run1]
        print("$ trainer train " + " ".join(cmd[4:]), flush=True)
        trainer = STEPS.start(cmd, env)
        status = ["--config", str(REPO / "configs" / "demo.yaml"),
                  "--set", "drive.logs=drive:Models/demo/logs"]
        safe = _wait_for_mid_epoch_checkpoint("drive:Models/demo/logs", args.kill_after_epoch,
                                              env, trainer, timeout=900)

        _say(f"5. The runtime vanishes: SIGKILL in the middle of epoch {safe['epoch'] + 1}")
        if STEPS.signum is None:   # (else the training saves: STEPS.finish waits for it)
            trainer.send_signal(signal.SIGKILL)
        STEPS.finish(trainer)
        print(f"trainer killed (exit {trainer.returncode}); what is safe on Drive:")
        print("$ trainer status " + " ".join(status), flush=True)
        _run([PY, "-m", "trainer", "status", *status], env, check=False, show=False)
        safe = _status(status, env) or safe
        print(f"(epoch {safe['epoch'] + 1} had {safe['epoch_iteration']} of its iterations done)")

        _say("6. A fresh runtime: empty local folders, --resume auto continues from Drive at "
             f"iteration {safe['iteration']}")
        run2 = ["--set", f"train.out_dir={work / 'runtime2' / 'logs'}",
                "--set", f"data.root={work / 'runtime2' / 'data'}"]
        res, log = _run_teeing_stderr([PY, "-m", "trainer", "train", *common, *run2,
                                       "--resume", "auto"], env)
        sys.stdout.write(res.stdout)
        resumed = [line for line in log.splitlines() if "resumed from " in line]
        if not resumed or f"iteration {safe['iteration']} " not in resumed[0]:
            raise SystemExit(f"demo: the resume did not continue at iteration {safe['iteration']}")

        _say("7. Predictions on validation images")
        out_logs = work / "runtime2" / "logs"
        best = out_logs / "best.pt" if (out_logs / "best.pt").exists() else out_logs / "last.pt"
        val_ids = (work / "runtime2" / "data").rglob("ImageSets/Main/val.txt")
        val_file = next(iter(val_ids), None)
        pred_src = work / "predict_in"
        pred_src.mkdir()
        if val_file is not None:
            jpegs = val_file.parent.parent.parent / "JPEGImages"
            for image_id in val_file.read_text().split()[:6]:
                shutil.copy2(jpegs / f"{image_id}.jpg", pred_src / f"{image_id}.jpg")
        _run([PY, "-m", "trainer", "predict", "--weights", str(best), "--source", str(pred_src),
              "--out", str(work / "predictions"), "--conf", "0.25"], env,
             stdout=subprocess.DEVNULL)

        _say("Summary")
        print(resumed[0].split(": ", 1)[-1])
        for line in res.stdout.splitlines():
            if "mAP" in line:
                print(line)
        pictures = sorted((work / "predictions").glob("*.jpg"))
        if pictures:
            print(f"predictions picture: {pictures[0]}  ({len(pictures)} images in "
                  f"{work / 'predictions'})")
        print("on Drive (drive:Models/demo/logs):")
        _run([PY, "-m", "drivestage", "ls", "drive:Models/demo/logs"], env, check=False,
             show=False)
        _run([PY, "-m", "drivestage", "quota"], env, check=False, show=False)
        print(f"demo finished in {time.monotonic() - t0:.0f} s")
    finally:
        left = STEPS.current
        if left is not None and left.poll() is None:
            left.kill()  # the demo failed during a step: never leave it running alone
            left.wait()
        emu.send_signal(signal.SIGTERM)
        try:
            emu.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emu.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
