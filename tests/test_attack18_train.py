"""Attacks on the trainer's saving and resuming from a hostile world (single process): a local
disk that fills up under a real training run (a tmpfs of a few hundred MiB, tests/_tmpfs.py),
damaged or lying local checkpoints next to good ones on Drive, a user's own files in the run
folder, and stops at awkward moments."""
from __future__ import annotations

import hashlib
import os
import tempfile

import pytest
import torch

from _tmpfs import small_disk  # noqa: F401 (a fixture)
from trainer import checkpoint as ckpt
from trainer.callbacks import Callback

MiB = 1 << 20
FOLDER = "Models/a18/logs"


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def _fill(folder, leave: int = 0) -> None:
    """Another program writes into ``folder`` until its file system is full, then gives back
    ``leave`` bytes (about: a tmpfs counts in pages)."""
    path = os.path.join(folder, "filler.bin")
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * (64 << 10))
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
    if leave:
        os.truncate(path, max(0, os.path.getsize(path) - leave))


class _FillsTheDisk(Callback):
    """Fills ``disk`` as epoch ``epoch`` (0-based) begins, once the previous epoch's files are
    all written (its last file is ``after``'s sidecar): the next save meets a full disk."""

    def __init__(self, disk, epoch: int, after: str, leave: int = 0):
        self.disk, self.epoch, self.after, self.leave = disk, epoch, after, leave

    def on_train_epoch_start(self, run, epoch: int) -> None:
        if epoch != self.epoch:
            return
        # The background writer writes the previous epoch's files while this epoch trains:
        # wait (bounded) until its last one is there, so the disk fills after it, not during.
        import time

        side = os.path.join(run.out_dir, self.after)
        deadline = time.monotonic() + 60
        while not os.path.exists(side):
            assert time.monotonic() < deadline, f"{side} never appeared"
            time.sleep(0.01)
        _fill(self.disk, self.leave)


def _config(tiny_config, out_dir, **overrides):
    from trainer.config import load_config

    kw = {"train.freeze_epochs": 0, "train.epochs": 2, "train.save_period": 1,
          "train.eval_period": 100, "train.mosaic": False, "train.mixup": False,
          "train.out_dir": str(out_dir), **overrides}
    return load_config(tiny_config(**kw))


def _files(folder) -> list[str]:
    return sorted(os.listdir(folder))


# --------------------------------------------------------------------------- a full disk

@pytest.mark.slow
def test_the_final_save_on_a_full_disk_fails_the_run_with_one_line_and_keeps_the_last_good(
        tiny_config, small_disk, one_torch_thread, caplog, tmp_path, monkeypatch):
    """The disk fills up (another program) during the last epoch. The epoch's checkpoint
    cannot be written; before, the run still ended 0 ("checkpoints in logs") with last.pt one
    epoch behind, and the writer's error said "[enforce fail at inline_container.cc:672] .
    unexpected pos 67094208 vs 67094096" (torch's zip writer) instead of the full disk.
    The trained epoch's state goes to this machine's temporary folder, on another disk, and
    is named (attackstop32: it was dropped, "the newest checkpoint there is epoch_001.pt")."""
    from trainer.engine import fit
    from trainer.errors import SaveError

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    disk = small_disk(400 * MiB)
    logs = disk / "logs"
    cfg = _config(tiny_config, logs, **{"train.save_minutes": 0})  # (the room check: 5 files fit)
    with pytest.raises(SaveError) as failed:
        fit(cfg, resume="none", callbacks=[_FillsTheDisk(disk, 1, "epoch_001.json", leave=256 << 10)])
    text = str(failed.value)
    assert failed.value.exit_code == 1
    assert "\n" not in text
    assert text.startswith(f"could not write the checkpoint of epoch 2 (last.pt, epoch_002.pt, best.pt) "
                           f"in {logs}: [Errno 28] No space left on device; ")
    kept = os.path.join(tempfile.gettempdir(), os.listdir(tempfile.gettempdir())[0],
                        "epoch_002.pt")
    assert text.endswith(f"; its state is saved in {kept} on this machine: free some space, "
                         f"then --resume {kept} goes on from it (copy it off this machine while "
                         "it lasts)"), text
    side = ckpt.read_sidecar(kept)
    assert side.epoch == 2 and side.md5 == _md5(kept) and \
        ckpt.load_checkpoint(kept)["epoch"] == 2
    # The files of epoch 1 are as they were, with their sidecars; no new final name, no temp.
    assert _files(logs) == ["epoch_001.json", "epoch_001.pt", "last.json", "last.pt", "loss.png",
                            "map.png", "results.csv", "tensorboard"]
    for name in ("last.pt", "epoch_001.pt"):
        side = ckpt.read_sidecar(str(logs / name))
        assert side.epoch == 1 and side.md5 == _md5(logs / name)
        assert ckpt.load_checkpoint(str(logs / name))["epoch"] == 1
    # What the writer logged names the full disk, not torch's internals.
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors and all("No space left on device" in e for e in errors), errors
    assert not any("inline_container" in e for e in errors), errors


@pytest.mark.slow
def test_a_disk_full_to_the_last_byte_is_one_error_line_and_the_same_command_then_goes_on(
        tiny_config, small_disk, one_torch_thread, caplog, monkeypatch):
    """Not a byte left as the last epoch ends: results.csv, the curves, TensorBoard and the
    checkpoint all fail. Before, results.csv's OSError came up through fit as a traceback
    (the checkpointer, last in line, never ran) and left ``.results.csv.tmp`` and
    ``.loss.png.tmp`` behind. Once space is freed, the same command trains on from epoch 1."""
    from trainer.engine import fit
    from trainer.errors import SaveError

    disk = small_disk(400 * MiB)
    logs = disk / "logs"
    (disk / "tmp").mkdir()   # (the temporary folder on the same disk: full too)
    monkeypatch.setattr(tempfile, "tempdir", str(disk / "tmp"))
    # No autosaves (this run is seconds long): the start-up check of the run again counts
    # two beside epoch 2's files otherwise (trainer23), more than the 265 MiB left here.
    cfg = _config(tiny_config, logs, **{"train.save_minutes": 0})
    with pytest.raises(SaveError) as failed:
        fit(cfg, resume="none", callbacks=[_FillsTheDisk(disk, 1, "epoch_001.json")])
    assert "[Errno 28] No space left on device, nor on this machine ([Errno 28] No space left " \
           "on device); the newest checkpoint there is epoch_001.pt (epoch 1, iteration 2)" in \
           str(failed.value)
    assert os.listdir(disk / "tmp") == []
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith(f"could not write {logs / 'results.csv'}: [Errno 28]") for m in warned), warned
    assert [f for f in _files(logs) if f.startswith(".")] == []     # no temporary file left
    os.remove(disk / "filler.bin")
    result = fit(cfg, resume="auto")
    assert result.resumed_from == str(logs / "epoch_001.pt") and result.epochs_run == 1
    assert ckpt.load_checkpoint(str(logs / "epoch_002.pt"))["epoch"] == 2
    with open(logs / "results.csv") as fh:
        assert [line.split(",")[0] for line in fh] == ["epoch", "1", "2"]


# --------------------------------------------------------------------------- damaged local files

def _bytes(run: str, epoch: int, iteration: int) -> bytes:
    """A minimal full checkpoint (what load_checkpoint accepts)."""
    import io

    buf = io.BytesIO()
    torch.save({"format_version": 2, "model": {"w": torch.arange(8192.0)}, "optimizer": {},
                "epoch": epoch, "iteration": iteration, "epoch_iteration": 0, "config": {},
                "run": run}, buf)
    return buf.getvalue()


def _flipped(good: bytes) -> bytes:
    """One byte of the tensors flipped (bit rot, a bad copy): torch.load does not notice."""
    data = bytearray(good)
    data[len(data) // 2] ^= 0xFF
    import io

    assert not torch.equal(torch.load(io.BytesIO(bytes(data)), weights_only=True)["model"]["w"],
                           torch.arange(8192.0))
    return bytes(data)


def _sidecar(data: bytes, run: str, epoch: int, iteration: int) -> bytes:
    import json

    return json.dumps({"epoch": epoch, "iteration": iteration, "epoch_iteration": 0, "run": run,
                       "md5": hashlib.md5(data).hexdigest(), "size": len(data)}).encode()


@pytest.fixture
def drive(emulator, drive_env, local_state):
    return emulator


def _decide(out_dir, resume: str = "auto"):
    from types import SimpleNamespace

    from trainer.drive import DriveFolder
    from trainer.resume import _decide

    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(out_dir)))
    return _decide(cfg, resume, DriveFolder(f"drive:{FOLDER}", str(out_dir)))


def _put(folder, name: str, data: bytes, side: bytes) -> None:
    os.makedirs(folder, exist_ok=True)
    (folder / f"{name}.pt").write_bytes(data)
    (folder / f"{name}.json").write_bytes(side)


DAMAGE = {
    "zero bytes": lambda good: b"",
    "truncated": lambda good: good[: len(good) // 2],
    "a tensor, not a checkpoint": lambda good: _tensor_bytes(),
    "another run's last.pt copied over it": lambda good: _bytes("run-B", 7, 70),
    "an older state of the run (a backup put back)": lambda good: _bytes("run-A", 1, 10),
    "a byte flipped in its tensors (it still loads)": _flipped,
}


def _tensor_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(torch.zeros(3), buf)
    return buf.getvalue()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_or_replaced_local_last_pt_resumes_from_the_newest_valid_checkpoint(
        drive, tmp_path, damage, caplog):
    """The run folder's last.pt (its sidecar: run A, epoch 3, the md5 of what the trainer
    wrote) now holds other bytes; epoch_002.pt beside it is good, and Drive holds run A's
    verified epoch_003.pt. --resume auto must continue run A from Drive's epoch 3 and say why
    last.pt was passed over. Before, a last.pt that loads (another run's, an older one) was
    trusted on its sidecar's word: the run continued run B's weights (epoch 7) in run A's
    folder, or went back to epoch 1, and Drive's epoch 3 was ignored."""
    logs = tmp_path / "logs"
    three = _bytes("run-A", 3, 30)
    _put(logs, "epoch_002", _bytes("run-A", 2, 20), _sidecar(_bytes("run-A", 2, 20), "run-A", 2, 20))
    _put(logs, "last", DAMAGE[damage](three), _sidecar(three, "run-A", 3, 30))
    drive.add_file(f"{FOLDER}/epoch_003.pt", three)
    drive.add_file(f"{FOLDER}/epoch_003.json", _sidecar(three, "run-A", 3, 30))
    start = _decide(logs)
    assert start.path == str(logs / "epoch_003.pt")
    assert (logs / "epoch_003.pt").read_bytes() == three
    state = ckpt.load_checkpoint(start.path)
    assert (state["run"], state["epoch"]) == ("run-A", 3)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(f"{logs / 'last.pt'}" in m for m in warned), warned


# --------------------------------------------------------------------------- a config that changed

def test_resume_with_the_classes_reordered_is_refused_and_another_input_size_or_data_is_said(
        tiny_config, tmp_path, one_torch_thread):
    """Same class count, other names or order (another dataset's classes file, or the list
    sorted): the output for class 0 would go on learning another class. The signature only
    compares the count: the run resumed silently, its history's mAP of another class
    mapping. `trainer eval` already refuses such weights; a resume now does too. Another
    input size or training set is allowed, but was not said anywhere."""
    from click.testing import CliRunner

    from trainer.cli import cli
    from trainer.engine import fit

    path = tiny_config(**{"train.epochs": 1, "train.freeze_epochs": 0, "train.mosaic": False,
                          "train.mixup": False})
    from trainer.config import load_config

    fit(load_config(path), resume="none")
    logs = tmp_path / "logs"
    before = {n: _md5(logs / n) for n in sorted(os.listdir(logs)) if n.endswith((".pt", ".json"))}
    res = CliRunner().invoke(cli, ["train", "-c", path, "--set", "train.epochs=2", "--set",
                                   "data.classes=[square, circle, triangle]"])
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    line = res.output.strip().splitlines()[-1]
    assert line == (
        f"Error: cannot resume from {logs / 'epoch_001.pt'}: it was trained on the classes "
        f"[circle, square, triangle] and the config names [square, circle, triangle] "
        f"(data.classes; a class is its place in the list). Resume with the classes it was "
        f"trained on, or start a new run that fine-tunes from it: --resume none --set "
        f"model.weights={logs / 'epoch_001.pt'} --set train.out_dir=<a new folder> (and "
        f"drive.logs=<a new Drive folder> where it is set)")
    assert {n: _md5(logs / n) for n in before} == before     # nothing written
    # Another input size, another training set: a choice the run may make (the network is
    # convolutional; a larger size late in a run is a known trick), but never a silent one.
    other = tmp_path / "other_train.txt"
    other.write_text(open(load_config(path).data.train).read())
    res = CliRunner().invoke(cli, ["train", "-c", path, "--set", "model.input_size=96",
                                   "--set", f"data.train={other}"])
    assert res.exit_code == 0, res.output
    warned = [line for line in res.output.splitlines() if line.startswith("WARNING")]
    assert warned == [
        f"WARNING trainer.restore: {logs / 'epoch_001.pt'} was trained with another "
        f"data.train ({load_config(path).data.train}, now {other}), model.input_size (64, "
        f"now 96); training goes on with the config's"]


# --------------------------------------------------------------------------- a run sent back

def _branched(folder) -> None:
    """Run A reached epoch 10; its loss had diverged, so the user resumed it on purpose from
    epoch_005.pt (``--resume logs/epoch_005.pt --set train.lr=...``), and that branch saved
    epoch 6 (last.pt and epoch_006.pt), later than epoch 10 was saved."""
    def save(name, epoch):
        state = {"format_version": 2, "model": {}, "optimizer": {}, "epoch": epoch,
                 "iteration": epoch * 10, "epoch_iteration": 0, "config": {}, "run": "run-A"}
        ckpt.save_checkpoint(state, str(folder / name))

    for name, epoch in (("epoch_005.pt", 5), ("epoch_010.pt", 10), ("epoch_006.pt", 6)):
        save(name, epoch)
    ckpt.copy_checkpoint(str(folder / "epoch_006.pt"), str(folder / "last.pt"))


BRANCH = ("epoch_006", "last")       # the new branch's files; epoch_005 and epoch_010 are older


@pytest.mark.parametrize("local, remote", [
    ("all", "none"),                 # the same machine
    ("none", "all"),                 # a fresh machine, from Drive
    ("all", "all"),
    ("all", "old"),                  # the branch's first save never reached Drive
    ("old", "all"),                  # the run was sent back on another machine, from Drive
])
def test_a_run_resumed_on_purpose_from_an_older_checkpoint_stays_on_that_branch(
        drive, tmp_path, local, remote):
    """The user's branch (epoch 6, saved last) is where --resume auto must go on after the next
    disconnect. Before, the most advanced checkpoint of the run won: epoch_010.pt, the
    diverged state the user had left (locally, from Drive on a fresh machine, and, where the
    two differ, as "the local folder is behind Drive" or by staying on the local epoch 10)."""
    import shutil

    made = tmp_path / "made"
    made.mkdir()
    _branched(made)
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in sorted(os.listdir(made)):
        stem = name.rsplit(".", 1)[0]
        if local == "all" or (local == "old" and stem not in BRANCH):
            shutil.copy2(made / name, logs / name)
        if stem != "last" and (remote == "all" or (remote == "old" and stem not in BRANCH)):
            drive.add_file(f"{FOLDER}/{name}", str(made / name))   # last.pt never goes to Drive
    start = _decide(logs)
    assert ckpt.load_checkpoint(start.path)["epoch"] == 6, start
    assert os.path.basename(start.path) == "epoch_006.pt"


def test_a_stop_save_written_before_a_queued_epoch_save_is_still_the_newest(drive, tiny_config):
    """Drive is slow: the writer thread still uploads epoch 1 while epoch 2's save waits in
    the queue, and a SIGTERM early in epoch 3 writes the stop save at once, in the training
    thread. The queued epoch 2 save is written after it. The run is not sent back: the stop
    save (epoch 3, iteration 5) stays where --resume auto goes on, whatever order the files
    were completed in."""
    import signal

    from test_messages_attack18 import _run
    from trainer.config import load_config
    from trainer.errors import TrainingInterrupted
    from trainer.state import Position

    cfg = load_config(tiny_config(**{"drive.logs": f"drive:{FOLDER}", "train.epochs": 5,
                                     "train.grace_seconds": 0.2}))
    run = _run(cfg, drive=True)
    drive.faults.latency(0.5, path=r"^/upload/")
    try:
        run.state.pos = Position(1, 2, 0)
        run.checkpointer.on_fit_epoch_end(run, run.state.pos, {"epoch": 1})
        run.state.pos = Position(2, 4, 0)
        run.checkpointer.on_fit_epoch_end(run, run.state.pos, {"epoch": 2})   # queued
        run.stop.request(signal.SIGTERM)
        run.state.pos = Position(2, 5, 1)
        with pytest.raises(TrainingInterrupted):
            run.checkpointer.on_train_batch_end(run, run.state.pos, {})
    finally:
        drive.faults.clear()
        assert run.writer.close() is True            # the queued epoch 2 save is written now
    logs = run.out_dir
    assert ckpt.read_sidecar(os.path.join(logs, "epoch_002.pt")).epoch == 2
    found = ckpt.find_latest(logs, run=run.state.run, any_run=False)
    assert os.path.basename(found) == "autosave_00000005.pt"


# --------------------------------------------------------------------------- names in the way

@pytest.mark.slow
def test_the_last_epochs_copy_that_cannot_be_written_is_made_by_the_same_command_once_fixed(
        drive, tiny_config, tmp_path, one_torch_thread):
    """Something stands where the last epoch's ``epoch_001.pt`` goes (here a folder of the
    user's; a disk with room for last.pt but not for its copy does the same): last.pt holds
    the epoch, but last.pt never goes to Drive. Before, the run ended 0; and the same command
    again trained nothing and pushed nothing, so Drive never got the final epoch. Now the run
    ends 1 naming what is missing, and the same command, once the way is clear, makes the
    copy from last.pt and uploads it (training nothing)."""
    from trainer.config import load_config
    from trainer.engine import fit
    from trainer.errors import SaveError

    logs = tmp_path / "logs"
    cfg = _config(tiny_config, logs, **{"train.epochs": 1, "drive.logs": f"drive:{FOLDER}",
                                        "train.eval_period": 1})
    # (The mirror sends the user's folder to Drive with the run folder, at a moment of its
    # own: there already, so that the test does not depend on that moment.)
    drive.add_file(f"{FOLDER}/epoch_001.pt/mine.txt", b"the user's")

    class _MadeMidRun(Callback):
        """The user's folder appears as the epoch begins: one there at the start is refused
        before training (trainlefts47), so the mid-run failure is reached this way."""

        def on_train_epoch_start(self, run, epoch: int) -> None:
            (logs / "epoch_001.pt").mkdir()
            (logs / "epoch_001.pt" / "mine.txt").write_text("the user's")

    with pytest.raises(SaveError) as failed:
        fit(cfg, resume="none", callbacks=[_MadeMidRun()])
    text = str(failed.value)
    assert text.startswith(f"could not write epoch_001.pt, best.pt (epoch 1) in {logs}: [Errno 21] "), text
    # (last.pt never goes to Drive: it is sent there as epoch_001.pt (epochkeep32), never
    # beside Drive's folder of that name, as the push refuses to (trainlefts46).)
    assert text.endswith(f"; the state of epoch 1 is in last.pt, not sent to drive:{FOLDER} "
                         f"(drive:{FOLDER}/epoch_001.pt exists and is a folder, not a file; "
                         f"this run's epoch_001.pt cannot be sent there: rename that folder on "
                         f"Drive): fix that and run the same command again to make them from "
                         f"it (it trains nothing more)"), text
    assert (logs / "epoch_001.pt" / "mine.txt").read_text() == "the user's"      # untouched
    import shutil

    shutil.rmtree(logs / "epoch_001.pt")
    # Drive's folder of the name is renamed, as the push's line says (attackpush45: a file is
    # not sent beside a folder of its name; the run's walk push refused, exit 2, in CI).
    mine = drive.find(f"{FOLDER}/epoch_001.pt/mine.txt")["parents"][0]["id"]
    drive.store.update_meta(mine, {"title": "mine"})
    again = fit(cfg, resume="auto")
    assert again.epochs_run == 0
    for name in ("epoch_001.pt", "best.pt"):
        side = ckpt.read_sidecar(str(logs / name))
        assert side is not None and side.epoch == 1 and side.md5 == _md5(logs / name)
    from trainer.drive import DriveFolder

    found = {c.name: c for c in DriveFolder(f"drive:{FOLDER}", str(tmp_path / "c")).checkpoints()}
    assert found["epoch_001.pt"].described.md5 == _md5(logs / "last.pt")


# --------------------------------------------------------------------------- two quick signals

def _child(path, log, env):
    """``trainer -v train -c PATH`` in a process of its own, forked with torch imported
    (tests/_trainer_proc.py)."""
    from _trainer_proc import start_trainer

    open(log, "w").close()
    return start_trainer(["-v", "train", "-c", path], env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
                         stderr=str(log))


def _all_sound(logs) -> list[str]:
    """Every checkpoint under a final name in ``logs`` loads and holds what its sidecar says
    (after what a resume does first: describe a file a killed save left undescribed)."""
    ckpt.describe_killed_saves(str(logs))
    names = sorted(n for n in os.listdir(logs) if n.endswith(".pt"))
    for name in names:
        state = ckpt.load_checkpoint(str(logs / name))
        side = ckpt.read_sidecar(str(logs / name))
        assert side is not None and side.md5 == _md5(logs / name), name
        assert ckpt.sidecar_mismatch(state, side) is None, name
    return names


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [("SIGTERM", -15), ("SIGINT", 130)])
def test_a_second_signal_while_the_stop_save_uploads_stops_at_once(
        drive, drive_env, tiny_config, tmp_path, sig, code):
    """A second SIGTERM (or Ctrl-C) once the stop save is written, while Drive is slow to take
    it: the run stops at once, as the docs say (SIGTERM: killed by it; Ctrl-C:
    "Interrupted.", 130), not after flushing the mirror for the rest of
    train.grace_seconds. (Two signals sent back to back are one for the OS: the second must
    come after the first was handled.) Every checkpoint left under a final name, here and on
    Drive, is whole and described; the same command then goes on from the stop save.

    Drive answers no upload here before the test ends, so a run that waits for the mirror
    waits out the whole grace (120 s) and says so; one that stops at once exits in seconds
    (up to 13 s seen on a loaded 2-core CI machine: that is the bound's margin)."""
    import signal
    import time

    from trainer.config import load_config
    from trainer.drive import DriveFolder
    from trainer.engine import fit

    kw = {"train.batch_size": 4, "train.freeze_batch_size": 4, "train.freeze_epochs": 0,
          "train.eval_period": 100, "train.save_period": 1, "drive.logs": f"drive:{FOLDER}",
          "train.grace_seconds": 120}
    path = tiny_config(**kw, **{"train.epochs": 30})
    log = tmp_path / "child.log"
    proc = _child(path, log, drive_env)
    deadline = time.monotonic() + 120
    while "epoch 2/30 iter 2/4" not in log.read_text():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the child never reached epoch 2"
        time.sleep(0.01)
    drive.faults.latency(3600, path=r"^/upload/")        # no upload is answered any more
    number = getattr(signal, sig)
    proc.send_signal(number)
    while "wrote autosave_" not in log.read_text():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the stop save was never written"
        time.sleep(0.01)
    proc.send_signal(number)
    second = time.monotonic()
    assert proc.wait(timeout=300) == code, log.read_text()[-3000:]
    took = time.monotonic() - second
    drive.faults.clear()
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    if sig == "SIGINT":
        assert text.strip().splitlines()[-1] == "Interrupted.", text[-3000:]
    assert "grace_seconds" not in text, text[-2000:]
    assert took < 60, (took, text[-2000:])      # (before: the rest of the grace)
    logs = tmp_path / "logs"
    names = _all_sound(logs)
    stop_save = [n for n in names if n.startswith("autosave_")]
    assert len(stop_save) == 1, names
    for c in DriveFolder(f"drive:{FOLDER}", str(tmp_path / "c")).checkpoints():
        assert c.described.verified
    if sig == "SIGINT":      # the going-on is the same after either signal: once is enough
        result = fit(load_config(tiny_config(**kw, **{"train.epochs": 3})), resume="auto")
        assert result.resumed_from == str(logs / stop_save[0])


def test_a_second_ctrl_c_does_not_wait_for_the_mirror(drive, tiny_config):
    """In process (a notebook): the first Ctrl-C asked for the stop; a second one comes while
    Drive is slow to take an upload. The save policy's on_interrupt used to flush the mirror
    for up to train.grace_seconds (60 s here) before "Interrupted."."""
    import signal
    import time

    from test_messages_attack18 import _run
    from trainer.config import load_config
    from trainer.state import Position

    cfg = load_config(tiny_config(**{"drive.logs": f"drive:{FOLDER}", "train.grace_seconds": 60}))
    run = _run(cfg, drive=True)
    drive.faults.latency(2.0, path=r"^/upload/")
    try:
        run.state.pos = Position(1, 2, 0)
        run.checkpointer.on_fit_epoch_end(run, run.state.pos, {"epoch": 1})
        run.stop.request(signal.SIGINT)
        began = time.monotonic()
        run.checkpointer.on_interrupt(run, KeyboardInterrupt())
        # (before: until the uploads were done, each held 2 s: any wait for one is >= 2 s)
        assert time.monotonic() - began < 1.9
    finally:
        drive.faults.clear()
        run.writer.close()
    assert ckpt.read_sidecar(os.path.join(run.out_dir, "epoch_001.pt")).epoch == 1


@pytest.mark.parametrize("with_drive", [False, True])
def test_a_run_folder_whose_every_checkpoint_is_damaged_is_not_started_over_silently(
        drive, tmp_path, with_drive):
    """Every checkpoint of run A in the folder is unreadable (truncated), and Drive holds
    nothing (or no drive.logs). Before, --resume auto said "no checkpoint in logs: starting
    fresh" and started run B among run A's files: the one-folder-one-run rule --resume none
    enforces, broken, and run A's damaged files mirrored beside run B's. Now it refuses,
    naming what it found and the ways out; nothing is written."""
    from types import SimpleNamespace

    from trainer.drive import DriveFolder
    from trainer.errors import CheckpointError
    from trainer.resume import _decide

    logs = tmp_path / "logs"
    good = _bytes("run-A", 2, 20)
    _put(logs, "epoch_002", good[: len(good) // 2], _sidecar(good, "run-A", 2, 20))
    before = sorted(os.listdir(logs))
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with pytest.raises(CheckpointError) as refused:
        _decide(cfg, "auto", DriveFolder(f"drive:{FOLDER}", str(logs)) if with_drive else None)
    assert str(refused.value) == (
        f"{logs} holds checkpoints of run run-A, and none of them can be read (epoch_002.pt); "
        f"start over with --resume none in new folders (--set train.out_dir=<a new folder>), "
        f"or --resume a checkpoint file you have")
    assert sorted(os.listdir(logs)) == before


@pytest.mark.slow
def test_a_resume_on_a_full_disk_that_cannot_repair_the_folder_goes_on_with_a_warning(
        tiny_config, small_disk, one_torch_thread, caplog):
    """The last epoch is in last.pt only (its copies were never made) and the disk is full
    when the same command runs again: making epoch_001.pt and best.pt from last.pt fails.
    That must not end the run in a traceback (an OSError from the repair): it warns, the
    run trains nothing more, and the next run, with space, makes them."""
    from trainer.engine import fit

    # 400 MiB: the start-up check counts the two autosaves kept beside last.pt, epoch_001.pt
    # and best.pt (trainer23: 5 x 70 MiB; this run fills the disk itself, later).
    disk = small_disk(400 * MiB)
    logs = disk / "logs"
    cfg = _config(tiny_config, logs, **{"train.epochs": 1, "train.eval_period": 1})
    fit(cfg, resume="none")
    for name in ("epoch_001", "best"):
        ckpt.remove_checkpoint(str(logs / f"{name}.pt"))
    _fill(disk)
    again = fit(cfg, resume="auto")
    assert again.epochs_run == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("could not make" in m and "No space left on device" in m for m in warned), warned
    assert [f for f in _files(logs) if f.startswith(".")] == []
    os.remove(disk / "filler.bin")
    fit(cfg, resume="auto")
    for name in ("epoch_001.pt", "best.pt"):
        assert ckpt.read_sidecar(str(logs / name)).md5 == _md5(logs / "last.pt")


def test_a_killed_saves_checkpoint_that_cannot_be_described_on_a_full_disk_is_one_line(
        tmp_path, small_disk):
    """A save killed between last.pt and its sidecar, then the disk full when the run starts
    again: the resume describes last.pt first (it is the most advanced state). Writing that
    sidecar failed with an OSError traceback; it is now one line saying what to do, and
    nothing is lost (falling back to an older checkpoint would train the epochs again)."""
    from types import SimpleNamespace

    from trainer.errors import SaveError
    from trainer.resume import _decide

    disk = small_disk(1 * MiB)
    logs = disk / "logs"
    state = {"format_version": 2, "model": {}, "optimizer": {}, "epoch": 2, "iteration": 4,
             "epoch_iteration": 0, "config": {}, "run": "run-A"}
    ckpt.save_checkpoint({**state, "epoch": 1, "iteration": 2}, str(logs / "epoch_001.pt"))
    ckpt.save_checkpoint(state, str(logs / "last.pt"))
    os.unlink(logs / "last.json")                        # what the kill left
    _fill(disk)
    with pytest.raises(SaveError) as failed:
        _decide(SimpleNamespace(train=SimpleNamespace(out_dir=str(logs))), "auto", None)
    assert str(failed.value) == (
        f"{logs / 'last.pt'} has no sidecar (a save was killed before it) and none could be "
        f"written: [Errno 28] No space left on device; free some space and run the same "
        f"command again")


def test_the_autosave_just_written_is_never_pruned_for_higher_numbered_ones(tmp_path):
    """After a run was sent back (resumed on purpose from epoch_005.pt, iteration 500), the
    folder still holds the old branch's autosave_00000950.pt and autosave_00001000.pt. The
    writer kept "the newest two autosaves" by number: each new autosave of the branch (and
    the stop save, an autosave too) was deleted as soon as it was written, before any push,
    and a SIGTERM's checkpoint was gone from the folder its message named."""
    from trainer.state import Position
    from trainer.writer import BackgroundWriter, SaveJob

    logs = tmp_path / "logs"
    for it in (950, 1000):
        ckpt.save_checkpoint({"format_version": 2, "model": {}, "optimizer": {}, "epoch": 9,
                              "iteration": it, "epoch_iteration": it - 900, "config": {},
                              "run": "run-A"}, str(logs / f"autosave_{it:08d}.pt"))
    writer = BackgroundWriter(str(logs))
    for it in (520, 550, 580):
        job = SaveJob({"format_version": 2, "model": {}, "optimizer": {}, "epoch": 5,
                       "iteration": it, "epoch_iteration": it - 500, "config": {},
                       "run": "run-A"}, [f"autosave_{it:08d}.pt"], Position(5, it, it - 500))
        writer.write_now(job)
        assert (logs / f"autosave_{it:08d}.pt").exists(), it
    assert writer.close()
    # The branch's newest two stay; the old branch's are left as they are.
    assert sorted(n for n in os.listdir(logs) if n.endswith(".pt")) == [
        "autosave_00000550.pt", "autosave_00000580.pt", "autosave_00000950.pt",
        "autosave_00001000.pt"]


# --------------------------------------------------------------------------- CheckpointSync

def test_checkpoint_sync_on_save_with_a_full_disk_warns_instead_of_raising_into_the_loop(
        emulator, drive_env, local_state, small_disk, caplog):
    """A training loop's own save fit on the disk, the 200-byte sidecar on_save writes beside
    it did not: the OSError came up through on_save ("returns at once") into the user's loop,
    ending a training run for a piece of metadata. It is a warning now; the checkpoint is
    mirrored all the same (unverified until a later save has its sidecar), and the loop
    goes on."""
    from drivestage.drive import connect
    from drivestage.hooks import CheckpointSync

    store = connect(api_root=emulator.url, token="test-token")
    disk = small_disk(256 * 1024)
    run = disk / "run"
    sync = CheckpointSync((store, "Models/a18/hooks"), local_dir=str(run))
    path = run / "epoch_001.pt"
    path.write_bytes(b"weights of epoch 1" * 100)
    _fill(disk)
    sync.on_save(str(path), 1, {"map50": 0.5})
    sync.on_train_end()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("no sidecar for" in m and "No space left on device" in m for m in warned), warned
    assert not (run / "epoch_001.json").exists()
    assert [f for f in os.listdir(run) if f.startswith(".")] == []
    titles = {f["title"] for f in emulator.files() if not f["labels"]["trashed"]}
    assert "epoch_001.pt" in titles
