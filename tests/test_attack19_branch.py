"""A run resumed on purpose from an older checkpoint (a diverged loss sent back) is recorded
at once (:func:`trainer.resume.record_branch`): the sidecar of the checkpoint resumed from is
dated now, in the run folder and on Drive, before the first iteration. Attacked here: a
stop before the branch's first save, a kill between the local re-date and the push, a
push that fails, a clock behind, a second machine on the old line, retention, a resume
from the newest (nothing written), a checkpoint from outside the run folder."""
from __future__ import annotations

import hashlib
import os
import time
import types

import pytest

from trainer import checkpoint as ckpt

FOLDER = "Models/a19/logs"
HOUR = 3600.0


@pytest.fixture
def drive(emulator, drive_env, local_state):
    return emulator


def _folder(out_dir, policy=None):
    from trainer.drive import DriveFolder

    return DriveFolder(f"drive:{FOLDER}", str(out_dir), policy)


def _decide(out_dir, resume: str = "auto", drive: bool = True):
    from trainer.resume import _decide as decide

    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=str(out_dir)))
    return decide(cfg, resume, _folder(out_dir) if drive else None)


def _record(out_dir, start, drive: bool = True, policy=None):
    """What the engine does once the start is restored, before the first iteration."""
    from trainer.resume import record_branch, saved_before
    from trainer.writer import BackgroundWriter

    run = ckpt.read_sidecar(start.path).run
    writer = BackgroundWriter(str(out_dir), _folder(out_dir, policy) if drive else None)
    try:
        writer.not_before(saved_before(str(out_dir), run, start))
        return record_branch(str(out_dir), start, run, writer)
    finally:
        writer.close(push=False)


def _status():
    from trainer.drive import newest_of_current_run

    found = newest_of_current_run(_folder("unused").checkpoints())
    return None if found is None else found.name


def _state(run: str, epoch: int, **extra) -> dict:
    return {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {}, "epoch": epoch,
            "iteration": epoch * 10, "epoch_iteration": 0, "config": {}, "run": run, **extra}


def _put(emu, path: str) -> None:
    for p in (path, ckpt.sidecar_path(path)):
        emu.add_file(f"{FOLDER}/{os.path.basename(p)}", p)


def _line(logs, epochs, run="r1", drive=None, start=None) -> dict:
    """The run's checkpoints epoch_NNN.pt, saved a second apart ending now (and last.pt, a
    copy of the last), each pushed to ``drive``."""
    now = start if start is not None else time.time() - len(epochs)
    out = {}
    for i, e in enumerate(epochs):
        out[e] = ckpt.save_checkpoint(_state(run, e), str(logs / f"epoch_{e:03d}.pt"),
                                      saved=now + i)
        if drive is not None:
            _put(drive, out[e])
    ckpt.copy_checkpoint(out[epochs[-1]], str(logs / "last.pt"))
    return out


def _md5(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


def _on_drive(emu) -> dict:
    """name -> (id, md5) of what drive.logs holds."""
    folder = emu.find(FOLDER)["id"]
    return {f["title"]: (f["id"], f.get("md5Checksum")) for f in emu.files()
            if folder in [p["id"] for p in f.get("parents", [])] and not f["labels"]["trashed"]}


# --------------------------------------------------------------------------- Drive

def test_a_branch_is_on_drive_before_its_first_save(drive, tmp_path):
    """Epoch 10 diverged; the user resumes from logs/epoch_005.pt. Before the first
    iteration Drive already says the run goes on from epoch 5: trainer status and a fresh
    machine's --resume auto take it, not the diverged epoch 10 (kept there, its bytes as
    they were). epoch_005.pt itself is not uploaded again: only its sidecar changes, and
    its md5 still names the bytes."""
    logs = tmp_path / "logs"
    made = _line(logs, [5, 8, 10], drive=drive)
    before = _on_drive(drive)
    start = _decide(logs, str(made[5]))
    assert _record(logs, start) == "epoch_005.pt"

    assert _status() == "epoch_005.pt"
    fresh = _decide(tmp_path / "fresh")
    assert os.path.basename(fresh.path) == "epoch_005.pt"
    assert ckpt.load_checkpoint(fresh.path)["epoch"] == 5
    assert os.path.basename(_decide(logs).path) == "epoch_005.pt"
    after = _on_drive(drive)
    assert after["epoch_005.pt"] == before["epoch_005.pt"]          # not sent again
    assert after["epoch_010.pt"] == before["epoch_010.pt"]
    assert after["epoch_005.json"][0] == before["epoch_005.json"][0]  # updated in place
    side = ckpt.read_sidecar(made[5])
    assert side.md5 == _md5(made[5]) and side.saved > ckpt.read_sidecar(made[10]).saved


def test_a_resume_from_the_newest_writes_nothing(drive, tmp_path, monkeypatch):
    """--resume logs/epoch_010.pt (the newest), or logs/last.pt (its copy): no sidecar is
    re-dated, and nothing is written to Drive (no request but reads)."""
    from _proxy import Proxy

    logs = tmp_path / "logs"
    made = _line(logs, [5, 10], drive=drive)
    sides = {p: open(p, "rb").read() for p in map(ckpt.sidecar_path, [*made.values(),
                                                                      str(logs / "last.pt")])}
    with Proxy(drive.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        for path in (made[10], str(logs / "last.pt")):
            assert _record(logs, _decide(logs, path)) is None
        writes = [r for r in proxy.requests if r[0] != "GET"]
    assert writes == []
    assert sides == {p: open(p, "rb").read() for p in sides}


def test_a_resume_from_the_newest_not_on_drive_yet_writes_nothing_to_drive(drive, tmp_path,
                                                                            monkeypatch):
    """The newest here (epoch 11) never reached Drive (whose newest is epoch 10): no branch,
    only Drive lagging; the first save's push sends it as usual, nothing is written now."""
    from _proxy import Proxy

    logs = tmp_path / "logs"
    made = _line(logs, [10], drive=drive)
    eleven = ckpt.save_checkpoint(_state("r1", 11), str(logs / "epoch_011.pt"))
    with Proxy(drive.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        assert _record(logs, _decide(logs, eleven)) is None
        assert [r for r in proxy.requests if r[0] != "GET"] == []
    assert ckpt.read_sidecar(made[10]).saved < ckpt.read_sidecar(eleven).saved


def test_sent_back_then_back_again_to_the_line_left(drive, tmp_path):
    """The user sent the run back to epoch 5, then changes their mind and names the epoch 10
    it left (now left behind by the branch): that is recorded the same way, here and on
    Drive."""
    logs = tmp_path / "logs"
    made = _line(logs, [5, 10], drive=drive)
    assert _record(logs, _decide(logs, str(made[5]))) == "epoch_005.pt"
    assert _status() == "epoch_005.pt"
    assert _record(logs, _decide(logs, str(made[10]))) == "epoch_010.pt"
    assert _status() == "epoch_010.pt"
    assert os.path.basename(_decide(logs).path) == "epoch_010.pt"
    assert os.path.basename(_decide(tmp_path / "fresh").path) == "epoch_010.pt"


def test_a_kill_between_the_local_re_date_and_the_push(drive, tmp_path):
    """The local sidecar was re-dated, then the process was killed before its push. The next
    --resume auto here goes on from epoch 5 (before, it dated the local sidecar as its
    older copy on Drive, took Drive's epoch 10 as another machine having gone on, and
    fetched it), and pushes the record then."""
    logs = tmp_path / "logs"
    made = _line(logs, [5, 10], drive=drive)
    assert _record(logs, _decide(logs, str(made[5])), drive=False) == "epoch_005.pt"
    assert _status() == "epoch_010.pt"                  # (killed here)
    start = _decide(logs)
    assert start.path == made[5]
    assert ckpt.load_checkpoint(made[5])["epoch"] == 5
    assert _record(logs, start) == "epoch_005.pt"
    assert _status() == "epoch_005.pt"


def test_a_clock_an_hour_behind_still_records_the_branch(drive, tmp_path, monkeypatch):
    """This machine's clock is an hour behind the one that saved epoch 10 (Drive's is
    right): the re-dated sidecar is still later than epoch 10's, here and on Drive."""
    logs = tmp_path / "logs"
    made = _line(logs, [5, 10], drive=drive)
    real = time.time
    start = _decide(logs, str(made[5]))
    import drivestage.emulator.server as server  # noqa: F401 (its clock stays right)
    from test_attack18_resume import _skewed

    _skewed(monkeypatch, -HOUR)
    assert real() - time.time() > HOUR - 60
    assert _record(logs, start) == "epoch_005.pt"
    assert ckpt.read_sidecar(made[5]).saved > ckpt.read_sidecar(made[10]).saved
    assert _status() == "epoch_005.pt"
    assert os.path.basename(_decide(tmp_path / "fresh").path) == "epoch_005.pt"


def test_a_second_machine_on_the_old_line_after_the_record_is_not_undone(drive, tmp_path):
    """Machine B goes on with the diverged line (epoch 11) after A recorded its branch: the
    later save wins on Drive, as it always did, and A's record deleted nothing of B's."""
    logs, b = tmp_path / "logs", tmp_path / "b"
    made = _line(logs, [5, 10], drive=drive)
    assert _record(logs, _decide(logs, str(made[5]))) == "epoch_005.pt"
    _put(drive, ckpt.save_checkpoint(_state("r1", 11), str(b / "epoch_011.pt"),
                                     saved=time.time() + 1))
    assert _status() == "epoch_011.pt"
    assert {"epoch_010.pt", "epoch_011.pt", "epoch_005.pt"} <= set(_on_drive(drive))


def test_retention_keeps_the_branch_and_the_line_behind_it(drive, tmp_path):
    """drive.keep_last 2: the push of the record keeps the two newest epochs of the line the
    run goes on with (5, the checkpoint resumed from, and 4 behind it); the line left
    behind (6, 9, 10) ranks older and goes, with its sidecars (test_attack20_retain.py); no
    sidecar is left without its checkpoint. A later prune keeps the same set."""
    from drivestage.pruning import prune
    from trainer.drive import retention_policy

    logs = tmp_path / "logs"
    made = _line(logs, [4, 5, 6, 9, 10], drive=drive)
    policy = retention_policy(2, 0, None)
    assert _record(logs, _decide(logs, str(made[5])), policy=policy) == "epoch_005.pt"
    kept = {"epoch_004", "epoch_005"}
    assert set(_on_drive(drive)) == {f"{n}{s}" for n in kept for s in (".pt", ".json")}
    prune(f"drive:{FOLDER}", policy)
    assert set(_on_drive(drive)) == {f"{n}{s}" for n in kept for s in (".pt", ".json")}
    assert _status() == "epoch_005.pt"


def test_a_checkpoint_from_outside_the_run_folder(drive, tmp_path):
    """--resume /content/backup/epoch_005.pt while logs/ holds epoch 10: the branch is
    recorded where --resume auto and the mirror look (a copy in the run folder, under its
    name), and on Drive."""
    logs, backup = tmp_path / "logs", tmp_path / "backup"
    made = _line(backup, [5, 10])
    _put(drive, made[10])
    ckpt.copy_checkpoint(made[10], str(logs / "epoch_010.pt"))
    assert _record(logs, _decide(logs, str(made[5]))) == "epoch_005.pt"
    assert os.path.basename(_decide(logs, drive=False).path) == "epoch_005.pt"
    assert _md5(logs / "epoch_005.pt") == _md5(made[5])
    assert _status() == "epoch_005.pt"


def test_a_fresh_machine_resuming_a_checkpoint_pulled_from_drive(drive, tmp_path):
    """On a fresh runtime the user pulls epoch_005.pt (and its sidecar) from Drive and resumes
    from it; the local folder holds nothing else, so only Drive knows epoch 10 is newer:
    the record goes there."""
    logs, made = tmp_path / "logs", tmp_path / "made"
    five = _line(made, [5, 10], drive=drive)[5]
    ckpt.copy_checkpoint(five, str(logs / "epoch_005.pt"))
    assert _record(logs, _decide(logs, str(logs / "epoch_005.pt"))) == "epoch_005.pt"
    assert _status() == "epoch_005.pt"
    assert os.path.basename(_decide(tmp_path / "fresh").path) == "epoch_005.pt"


def test_a_checkpoint_of_another_run_is_refused_before_anything_is_written(drive, tmp_path):
    """--resume of run r2's checkpoint into a run folder of r1 is refused (as before):
    nothing re-dated here, nothing written to Drive."""
    from trainer.errors import CheckpointError

    logs, other = tmp_path / "logs", tmp_path / "other"
    _line(logs, [5, 10], drive=drive)
    theirs = _line(other, [3, 4], run="r2")
    before = {p: open(p, "rb").read() for p in map(str, logs.glob("*.json"))}
    drive_before = _on_drive(drive)
    with pytest.raises(CheckpointError):
        _decide(logs, theirs[3])
    assert before == {p: open(p, "rb").read() for p in map(str, logs.glob("*.json"))}
    assert _on_drive(drive) == drive_before


# --------------------------------------------------------------------------- a real run

@pytest.mark.slow
def test_a_real_run_sent_back_and_stopped_before_its_first_save(
        drive, tiny_config, tmp_path, one_torch_thread, monkeypatch, caplog):
    """fit trains epochs 1-2 and pushes them; the user resumes from epoch_001.pt. At its
    first iteration, Drive already says epoch 1 (status, a fresh machine's resume), and
    after the run stops there, --resume auto here takes epoch 1 too. Then the user goes back
    to epoch_002.pt while Drive answers every upload 503: the run fails before training,
    with the record here, Drive unchanged, and no second push on the way out (the mirror's
    flush would only have repeated the failed one)."""
    from _proxy import Proxy, Reply
    from drivestage.errors import MirrorError

    from trainer.callbacks import Callback
    from trainer.config import load_config
    from trainer.engine import fit

    logs = tmp_path / "logs"
    cfg = load_config(tiny_config(**{
        "train.freeze_epochs": 0, "train.epochs": 2, "train.save_period": 1,
        "train.eval_period": 100, "train.mosaic": False, "train.mixup": False,
        "train.batch_size": 12, "model.input_size": 32,
        "train.out_dir": str(logs), "drive.logs": f"drive:{FOLDER}"}))
    fit(cfg, resume="auto")
    assert _status() == "epoch_002.pt"
    seen = {}

    class Stop(Callback):
        def on_train_batch_start(self, run, pos):
            seen["status"] = _status()
            seen["fresh"] = os.path.basename(_decide(tmp_path / "fresh").path)
            raise RuntimeError("disconnected")

    with pytest.raises(RuntimeError, match="disconnected"):
        fit(cfg, resume=str(logs / "epoch_001.pt"), callbacks=[Stop()])
    assert seen == {"status": "epoch_001.pt", "fresh": "epoch_001.pt"}
    assert os.path.basename(_decide(logs).path) == "epoch_001.pt"
    assert _status() == "epoch_001.pt"

    with Proxy(drive.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            proxy.on(method, r".", lambda *a: Reply(503, {"Content-Type": "application/json"},
                     [b'{"error": {"code": 503, "message": "backend error"}}']), forward=False)
        with pytest.raises(MirrorError, match="nothing was trained"):
            fit(cfg, resume=str(logs / "epoch_002.pt"))
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", drive.url)
    assert "the Drive mirror could not finish" not in caplog.text
    assert _status() == "epoch_001.pt"
    assert os.path.basename(_decide(logs).path) == "epoch_002.pt"


def test_the_record_is_strictly_later_than_the_newest_save_even_at_once(tmp_path, monkeypatch):
    """The clock is behind the run's newest save and the record is taken at once after the
    floor was set (no monotonic time between: a float of 1.7e9 does not change by 100 ns):
    it must still be later, not equal; a tie of ``saved`` goes to the name, and
    epoch_010 beats epoch_005 there, so an equal date left the run on the diverged line."""
    from trainer.writer import BackgroundWriter

    writer = BackgroundWriter(str(tmp_path / "logs"))
    try:
        newest = time.time() + 10
        monkeypatch.setattr(time, "monotonic", lambda: 1000.0)
        monkeypatch.setattr(time, "time", lambda: newest - HOUR)
        writer.not_before(newest)
        assert writer.taken() > newest
    finally:
        monkeypatch.undo()
        writer.close()
