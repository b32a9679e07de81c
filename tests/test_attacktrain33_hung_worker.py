"""attacktrain33: a DataLoader worker that hangs (an image read from a mount that stopped
answering, a library stuck in C), not one that dies.

The training thread waited for that worker's batch for good: a SIGTERM, Ctrl-C or SIGHUP only
set the stop flag, which is read at the next iteration's end, never reached. The run outlived
its ``train.grace_seconds`` with no line, and the launcher's SIGKILL (Colab's, torchrun's 30 s
on) lost every step since the last save. Now a signal that comes while the training thread
waits for a batch ends that wait: the state of the last step is saved as at an iteration's
end, and the workers are ended.

Real forked workers of the trainer's loader, a real fit (tiny_config); the worker hangs on a
pipe the test holds, and the test lets it go only after the fit has ended (or after 60 s:
before the fix it never ended by itself)."""
from __future__ import annotations

import logging
import os
import select
import signal
import threading

import pytest

from trainer import checkpoint as ckpt
from trainer import worker_deaths
from trainer.config import load_config
from trainer.data.dataset import YoloDataset
from trainer.engine import fit
from trainer.errors import TrainingInterrupted

_MAIN = os.getpid()
_calls = [0]


def _item_hangs(monkeypatch, item: int, hung_w: int, release_r: int) -> None:
    """In a loader worker, the training item read ``item``-th writes the worker's pid to
    ``hung_w`` and then waits on ``release_r`` (the test's) for good."""
    read = YoloDataset.sample

    def sample(self, index, *args, **kwargs):
        if self.train and os.getpid() != _MAIN:
            _calls[0] += 1
            if _calls[0] == item:
                os.write(hung_w, str(os.getpid()).encode())
                os.read(release_r, 1)
        return read(self, index, *args, **kwargs)

    monkeypatch.setattr(YoloDataset, "sample", sample)


@pytest.mark.parametrize("item, line", [
    (9, "stopped by SIGTERM at epoch 1, iteration 2: autosave_00000002.pt is saved in "),
    (1, "stopped by SIGTERM before the first step: nothing was trained, nothing is saved")])
def test_a_sigterm_while_a_hung_worker_holds_the_batch_saves_the_last_step_and_stops(
        tiny_config, one_torch_thread, monkeypatch, item, line):
    """The third batch's first item hangs (batch_size 4), SIGTERM once the training thread
    waits for it: autosave_00000002.pt, exit 143, the worker gone. Or the first batch's, the
    SIGTERM once that wait was said in a warning (HUNG_NOTE_S; before, nothing said it): no
    step to save, said so, and the run's exit code is still the signal's."""
    cfg = load_config(tiny_config(**{"data.workers": 1, "train.batch_size": 4,
                                     "train.freeze_epochs": 0, "train.epochs": 1,
                                     "train.grace_seconds": 30, "train.mosaic": False}))
    hung_r, hung_w = os.pipe()
    release_r, release_w = os.pipe()
    _item_hangs(monkeypatch, item, hung_w, release_r)
    ended, released, stepped = threading.Event(), threading.Event(), threading.Event()
    pid = []
    if item == 1:
        stepped.set()

    noted, missed = threading.Event(), []
    monkeypatch.setattr(worker_deaths, "HUNG_NOTE_S", 0.3)

    class _Second(logging.Handler):
        def emit(self, record):
            if "(iteration 2)" in record.getMessage():
                stepped.set()
            if record.getMessage().startswith("the training thread has waited "):
                noted.set()

    log = logging.getLogger("trainer.engine")
    monkeypatch.setattr(log, "level", logging.DEBUG)
    handler = _Second()
    log.addHandler(handler)
    logging.getLogger("trainer.worker_deaths").addHandler(handler)

    def signal_then_watch() -> None:
        ready, _, _ = select.select([hung_r], [], [], 60)
        assert ready and stepped.wait(60), "the worker never reached its hang"
        pid.append(int(os.read(hung_r, 32)))
        if item == 1:   # (its one wait is the hung one: said once it lasted HUNG_NOTE_S)
            noted.wait(60)
        for _ in range(6000):   # (the training thread now waits for the hung batch)
            if any([e.fetching for e in list(worker_deaths._epochs.values())]):
                break
            ended.wait(0.01)
        else:   # (the SIGTERM goes anyway, or fit() never ends; the test fails below)
            missed.append("the training thread never waited for the hung batch")
        os.kill(os.getpid(), signal.SIGTERM)
        if not ended.wait(60):   # (before the fix: the wait went on for good)
            released.set()
            os.write(release_w, b"g")

    watcher = threading.Thread(target=signal_then_watch, daemon=True)
    watcher.start()
    try:
        with pytest.raises(TrainingInterrupted) as caught:
            fit(cfg, resume="none")
    finally:
        log.removeHandler(handler)
        logging.getLogger("trainer.worker_deaths").removeHandler(handler)
        ended.set()
        watcher.join(70)
        os.write(release_w, b"g")   # (a worker still there ends; one killed reads nothing)
        for fd in (hung_r, hung_w, release_r, release_w):
            os.close(fd)
    assert missed == []
    assert noted.is_set() or item != 1, "the wait for the hung batch was never said"
    assert not released.is_set(), "the stop waited for the hung worker's batch"
    assert caught.value.exit_code == 143
    text = str(caught.value)
    assert text.startswith(line), text
    with pytest.raises(ProcessLookupError):   # (the hung worker is ended, and reaped)
        os.kill(pid[0], 0)
    if item == 9:
        assert text.startswith(line + cfg.train.out_dir), text
        state = ckpt.load_checkpoint(os.path.join(cfg.train.out_dir, "autosave_00000002.pt"))
        assert state["iteration"] == 2
    else:
        assert not os.path.exists(cfg.train.out_dir) or not any(
            n.endswith(".pt") for n in os.listdir(cfg.train.out_dir))


def test_a_sigterm_during_the_image_cache_fill_stops_there(tiny_config, one_torch_thread,
                                                           monkeypatch):
    """``data.cache=ram``: a fill of a large dataset takes minutes (a hung mount: for good),
    inside the stop's handlers. A SIGTERM or Ctrl-C only set the flag: the fill went on to its
    end, one step was trained, and its save came after the grace had passed (or the launcher's
    SIGKILL first). Now the fill ends at the signal, its pending images dropped: one line,
    exit 143, nothing trained or saved."""
    from trainer.data import cache

    cfg = load_config(tiny_config(**{"data.cache": "ram", "train.epochs": 1,
                                     "train.grace_seconds": 30}))
    reading, release, ended = threading.Event(), threading.Event(), threading.Event()
    real = cache.decode_fitted

    def decode(data, size, path):
        if threading.current_thread() is not threading.main_thread():
            reading.set()
            release.wait(60)   # (a mount that stopped answering; let go by the test)
        return real(data, size, path)

    monkeypatch.setattr(cache, "decode_fitted", decode)

    def signal_then_watch() -> None:
        assert reading.wait(60), "the fill never began"
        # (To this thread: the kernel may give a process's signal to any of its threads,
        # and the main thread's wait must still end; it does for one given to it too.)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        if not ended.wait(30):   # (before the fix: the fill went on)
            release.set()

    watcher = threading.Thread(target=signal_then_watch, daemon=True)
    watcher.start()
    try:
        with pytest.raises(TrainingInterrupted) as caught:
            fit(cfg, resume="none")
    finally:
        ended.set()
        watcher.join(70)
        late = release.is_set()
        release.set()
    assert not late, "the stop waited for the fill"
    assert caught.value.exit_code == 143
    assert str(caught.value) == ("stopped by SIGTERM while the datasets were prepared, before "
                                 "the first step: nothing was trained, nothing is saved")
    assert not os.path.exists(cfg.train.out_dir) or not any(
        n.endswith(".pt") for n in os.listdir(cfg.train.out_dir))
