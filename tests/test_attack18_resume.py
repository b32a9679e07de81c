"""Attacks on today's resume logic (single process, the Drive emulator over HTTP): clocks of two
machines that disagree, a large checkpoint checked against its sidecar, and a folder on Drive
rewritten while a resume reads it."""
from __future__ import annotations

import hashlib
import os
import time
import types

import pytest

from trainer import checkpoint as ckpt

FOLDER = "Models/a18r/logs"
HOUR = 3600.0


@pytest.fixture
def drive(emulator, drive_env, local_state):
    return emulator


def _decide(out_dir, resume: str = "auto"):
    from trainer.drive import DriveFolder
    from trainer.resume import _decide as decide

    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=str(out_dir)))
    return decide(cfg, resume, DriveFolder(f"drive:{FOLDER}", str(out_dir)))


def _status():
    """What ``trainer status`` shows: the name of the newest verified checkpoint on Drive."""
    from trainer.drive import DriveFolder, newest_of_current_run

    found = newest_of_current_run(DriveFolder(f"drive:{FOLDER}", "unused").checkpoints())
    return None if found is None else found.name


def _skewed(monkeypatch, offset: float) -> None:
    """This machine's clock is ``offset`` seconds off; Drive's (the emulator's, in this
    process too) is right."""
    import importlib
    import pkgutil

    import drivestage.emulator as emulator
    import trainer.saving as saving

    real = time.time
    right = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time)
                                     if not k.startswith("_")})
    for info in pkgutil.iter_modules(emulator.__path__):
        module = importlib.import_module(f"drivestage.emulator.{info.name}")
        if getattr(module, "time", None) is time:
            monkeypatch.setattr(module, "time", right)
    monkeypatch.setattr(time, "time", lambda: real() + offset)
    # (SaveJob's default took time.time when the class was made: the clock as it is now.)
    job = saving.SaveJob
    monkeypatch.setattr(saving, "SaveJob", lambda *a, **k: job(*a, **{"taken": time.time(), **k}))


def _config(tiny_config, out_dir, epochs: int):
    from trainer.config import load_config

    return load_config(tiny_config(**{
        "train.freeze_epochs": 0, "train.epochs": epochs, "train.save_period": 1,
        "train.eval_period": 100, "train.mosaic": False, "train.mixup": False,
        "train.out_dir": str(out_dir), "drive.logs": f"drive:{FOLDER}"}))


# --------------------------------------------------------------------------- clocks

@pytest.mark.slow
def test_machines_whose_clocks_disagree_continue_the_run_where_it_goes_on(
        drive, tiny_config, tmp_path, monkeypatch, one_torch_thread):
    """Machine A (its clock an hour ahead) trains epoch 1; machine B (an hour behind)
    continues from Drive and trains epoch 2. Nobody sent the run back: epoch 2 is where it
    goes on, for a resume from Drive, from B's own folder, and for trainer status. Before, a
    save dated by a slower clock than the checkpoint it continued from (the sidecar fetched
    keeps A's ``saved``; on Drive, A's is dated no later than it arrived) looked saved
    earlier while further on: "left behind", as a run sent back on purpose. B's next resume
    went back to epoch 1 from its folder, and so did a resume from Drive, and status."""
    from trainer.engine import fit

    for machine, offset, epochs in (("a", HOUR, 1), ("b", -HOUR, 2)):
        with monkeypatch.context() as clock:
            clock.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / f"state-{machine}"))
            _skewed(clock, offset)
            fit(_config(tiny_config, tmp_path / machine, epochs), resume="auto")
    assert _status() == "epoch_002.pt"
    assert os.path.basename(_decide(tmp_path / "fresh").path) == "epoch_002.pt"
    found = ckpt.find_latest(str(tmp_path / "b"), any_run=True)
    assert ckpt.load_checkpoint(found)["epoch"] == 2


def test_a_clock_stepped_back_during_a_run_never_dates_a_save_before_the_previous(
        tmp_path, monkeypatch):
    """NTP steps this machine's clock back an hour mid-run: the next save is still dated
    after the previous one (else it reads as sent back, and is passed over), and after the
    newest save of the run seen at the start."""
    from trainer.writer import BackgroundWriter

    writer = BackgroundWriter(str(tmp_path / "logs"))
    try:
        real = time.time
        other = real() + 10
        writer.not_before(other)                 # a save of another machine, clock ahead
        first = writer.taken()
        assert first > other
        monkeypatch.setattr(time, "time", lambda: real() - HOUR)
        second = writer.taken()
        assert second > first
    finally:
        writer.close()


# --------------------------------------------------------------------------- a large checkpoint

def test_the_md5_check_of_a_large_local_checkpoint_streams(tmp_path):
    """Resuming from a 200 MB checkpoint checks its md5 against the sidecar's (a flipped byte
    torch.load does not notice) by reading it in chunks: what Python holds at once while
    finding it stays a few MiB (torch's own copy of the tensors is outside tracemalloc's
    count, and needed anyway), and it takes about one read of the file."""
    import tracemalloc

    import torch

    logs = tmp_path / "logs"
    big = {"format_version": 2, "model": {"w": torch.zeros(200 << 20, dtype=torch.uint8)},
           "optimizer": {}, "epoch": 3, "iteration": 30, "epoch_iteration": 0, "config": {},
           "run": "run-A"}
    path = ckpt.save_checkpoint(big, str(logs / "epoch_003.pt"))
    del big
    assert os.path.getsize(path) > 200 << 20
    tracemalloc.start()
    try:
        began = time.perf_counter()
        assert ckpt.find_latest(str(logs), run="run-A", any_run=False) == path
        took = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak / (1 << 20):.0f} MiB held while checking {path}"
    print(f"find_latest of a 200 MiB checkpoint: {took:.2f} s, Python peak "
          f"{peak / (1 << 20):.1f} MiB")


# --------------------------------------------------------------------------- Drive rewritten

def _put(emu, path: str) -> None:
    for p in (path, ckpt.sidecar_path(path)):
        emu.add_file(f"{FOLDER}/{os.path.basename(p)}", p)


def _state(run: str, epoch: int, **extra) -> dict:
    return {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {}, "epoch": epoch,
            "iteration": epoch * 10, "epoch_iteration": 0, "config": {}, "run": run, **extra}


def test_a_checkpoint_further_on_drive_changed_during_the_fetch_never_sends_the_run_back(
        drive, tmp_path, monkeypatch):
    """This folder holds epoch 5; machine B went on to epoch 7 on Drive (epoch 4 is there
    too). While this resume fetches epoch_007.pt, B pushes a new version of it: the new
    bytes are there, their sidecar not yet (it goes last). The resume lists again. Before,
    it then took the newest verified checkpoint of the whole folder, epoch 4: behind this
    folder's epoch 5 (the epoch trained again, and epoch_005.pt overwritten). Now only a
    checkpoint that went further than this folder counts; none does yet, so it goes on from
    the local epoch 5."""
    from _proxy import Proxy, pushed_meanwhile
    from drivestage.drive import connect

    logs, made, other = tmp_path / "logs", tmp_path / "made", tmp_path / "b"
    _put(drive, ckpt.save_checkpoint(_state("r1", 4), str(made / "epoch_004.pt")))
    local = ckpt.save_checkpoint(_state("r1", 5), str(logs / "epoch_005.pt"))
    _put(drive, ckpt.save_checkpoint(_state("r1", 7, pad=b"a" * 4096), str(made / "epoch_007.pt")))
    again = ckpt.save_checkpoint(_state("r1", 7, pad=b"b" * 4096), str(other / "epoch_007.pt"))
    store = connect(api_root=drive.url, token="test-token")
    push = pushed_meanwhile(store, FOLDER, lambda: (again,), cut=True)  # not its sidecar yet

    with Proxy(drive.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        pt = drive.find(f"{FOLDER}/epoch_007.pt")["id"]
        proxy.on("GET", rf"/files/{pt}\?.*alt=media", push, times=1)
        start = _decide(logs)
    assert start.path == local, start
    assert ckpt.load_checkpoint(local)["epoch"] == 5


def test_a_folder_whose_clock_ran_ahead_still_sees_that_another_machine_went_on(drive, tmp_path):
    """Machine A (its clock an hour ahead) trained to epoch 5 and pushed it; machine B (clock
    right) continued from Drive to epoch 7. Back on A, --resume auto compares A's epoch 5 with
    Drive's epoch 7. Before, by A's own date of epoch 5 (an hour ahead) epoch 7 was saved
    "earlier": A went on from its epoch 5 and overwrote B's epochs 6 and 7 on Drive. Drive
    dates epoch 5's sidecar no later than it arrived there: that date is the one compared."""
    logs, made = tmp_path / "logs", tmp_path / "made"
    now = time.time()
    a = ckpt.save_checkpoint(_state("r1", 5), str(logs / "epoch_005.pt"), saved=now + HOUR)
    ckpt.copy_checkpoint(a, str(logs / "last.pt"))
    _put(drive, a)
    _put(drive, ckpt.save_checkpoint(_state("r1", 7), str(made / "epoch_007.pt"), saved=now + 1))
    start = _decide(logs)
    assert os.path.basename(start.path) == "epoch_007.pt", start
    assert ckpt.load_checkpoint(start.path)["epoch"] == 7
    assert _status() == "epoch_007.pt"


def test_a_sidecar_of_another_length_pushed_between_the_listing_and_its_read(
        drive, tmp_path, monkeypatch):
    """Another machine pushes a new version of epoch 2 (checkpoint, then sidecar, updated in
    place) after this resume listed the folder and before it read the sidecar; the new
    sidecar is longer (it names metrics). Before, reading it failed the whole resume
    ("epoch_002.json changed on Drive while downloading (size 187 became 230); run
    again"); that it was the same length, and only then listed again, was luck (the digits
    of its ``saved``). It lists once more, and takes the new version; status likewise."""
    from _proxy import Proxy, pushed_meanwhile
    from drivestage.drive import connect

    made, other = tmp_path / "made", tmp_path / "b"
    _put(drive, ckpt.save_checkpoint(_state("r1", 1), str(made / "epoch_001.pt")))
    _put(drive, ckpt.save_checkpoint(_state("r1", 2, pad=b"a" * 4096), str(made / "epoch_002.pt")))
    again = ckpt.save_checkpoint(_state("r1", 2, pad=b"b" * 4096), str(other / "epoch_002.pt"),
                                 metrics={"map50": 0.25, "map": 0.125, "val_loss": 1.5})
    store = connect(api_root=drive.url, token="test-token")
    push = pushed_meanwhile(store, FOLDER, lambda: (again, ckpt.sidecar_path(again)))

    for check in ("resume", "status"):
        with Proxy(drive.url) as proxy:
            monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
            logs = drive.find(FOLDER)["id"]
            proxy.on("GET", rf"/files\?.*{logs}", push, times=1)  # its first listing
            if check == "resume":
                start = _decide(tmp_path / f"logs-{check}")
                assert os.path.basename(start.path) == "epoch_002.pt"
                with open(start.path, "rb") as fh, open(again, "rb") as want:
                    assert fh.read() == want.read()
            else:
                assert _status() == "epoch_002.pt"
        again = ckpt.save_checkpoint(_state("r1", 2, pad=b"c" * 4096), str(other / "epoch_002.pt"),
                                     metrics={"map50": 0.5, "map": 0.25, "val_loss": 1.25,
                                              "extra": 1.0})


def test_a_checkpoint_rewritten_during_every_fetch_is_given_up_after_a_bounded_number_of_listings(
        drive, tmp_path, monkeypatch):
    """Two machines keep pushing epoch 2 (checkpoint then sidecar) while this resume fetches
    it, every time. The resume lists again at most MAX_RELISTS times, then fails with one
    DriveStageError line saying to run again; it never loops, never takes epoch 1 (a step
    back the next run would not need), and never another run's checkpoint (run r2 wrote
    epoch 9 into the folder before: the folder's run is the one written last)."""
    from _proxy import Proxy, Reply
    from drivestage.drive import connect
    from drivestage.errors import RemoteChangedError
    from trainer.resume import MAX_RELISTS

    made, other = tmp_path / "made", tmp_path / "b"
    _put(drive, ckpt.save_checkpoint(_state("r2", 9), str(made / "r2" / "epoch_009.pt")))
    _put(drive, ckpt.save_checkpoint(_state("r1", 1), str(made / "epoch_001.pt")))
    _put(drive, ckpt.save_checkpoint(_state("r1", 2, pad=b"a" * 4096), str(made / "epoch_002.pt")))
    store = connect(api_root=drive.url, token="test-token")
    pushes, calls = [0], [0]

    def pushed_meanwhile(status: int, headers: dict, body: bytes) -> Reply:
        calls[0] += 1
        if calls[0] % 2 == 0:      # the fetch's retry for the rest: the new version's bytes
            return Reply(status, headers, [body])
        pushes[0] += 1
        again = ckpt.save_checkpoint(_state("r1", 2, pad=b"%d" % pushes[0] * 4096),
                                     str(other / "epoch_002.pt"))
        folder = store.resolve(FOLDER)
        for path in (again, ckpt.sidecar_path(again)):
            old = store.resolve(f"{FOLDER}/{os.path.basename(path)}")
            store.upload(path, folder, old.name, replace=old)
        kept = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        return Reply(status, kept, [body[:len(body) // 2]])

    logs = tmp_path / "logs"
    with Proxy(drive.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        pt = drive.find(f"{FOLDER}/epoch_002.pt")["id"]
        proxy.on("GET", rf"/files/{pt}\?.*alt=media", pushed_meanwhile)
        with pytest.raises(RemoteChangedError) as failed:
            _decide(logs)
        listings = proxy.count("GET", rf"/files\?.*{drive.find(FOLDER)['id']}")
    assert pushes[0] == MAX_RELISTS + 1
    assert listings <= 2 * (MAX_RELISTS + 1), listings   # (each may list once more itself)
    assert "\n" not in str(failed.value) and str(failed.value).endswith("run again")
    assert not logs.exists() or os.listdir(logs) == []      # nothing fetched is left behind


# --------------------------------------------------------------------------- sent back

def test_a_run_sent_back_and_stopped_before_its_first_save_stays_sent_back(tmp_path):
    """The user resumes on purpose from epoch_005.pt (epoch 10 diverged) with a lower lr;
    Colab disconnects before the first autosave (train.save_minutes) or epoch end. Before,
    the next --resume auto went on from the diverged epoch 10, without a word: the branch
    existed only once it saved. Now the resume records it at once (the sidecar of
    epoch_005.pt dated now; its bytes, and the md5 its sidecar names, as they were). The
    Drive side: tests/test_attack19_branch.py."""
    from trainer.resume import _decide as decide
    from trainer.resume import record_branch, saved_before
    from trainer.writer import BackgroundWriter

    logs = tmp_path / "logs"
    five = ckpt.save_checkpoint(_state("r1", 5), str(logs / "epoch_005.pt"))
    ckpt.save_checkpoint(_state("r1", 10), str(logs / "epoch_010.pt"))
    with open(five, "rb") as fh:
        md5 = hashlib.md5(fh.read()).hexdigest()

    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=str(logs)))
    start = decide(cfg, str(logs / "epoch_005.pt"), None)
    assert start.path == five
    writer = BackgroundWriter(str(logs))       # what fit does once the start is restored
    try:
        writer.not_before(saved_before(str(logs), "r1", start))
        assert record_branch(str(logs), start, "r1", writer) == "epoch_005.pt"
    finally:
        writer.close()
    # (killed here, before any save)
    assert os.path.basename(decide(cfg, "auto", None).path) == "epoch_005.pt"
    with open(five, "rb") as fh:
        assert hashlib.md5(fh.read()).hexdigest() == md5 == ckpt.read_sidecar(five).md5
