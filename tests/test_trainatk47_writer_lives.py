"""trainatk47: any error after a save's files are written (its bookkeeping) ended the writer's
thread, and the next save that cannot be dropped waited for that thread for good: the run
hung without a line (found with an autosave's removal: test_trainatk47_writer.py). Here the
run folder's mount stops answering for a moment right after epoch 1's files are written
(``os.stat`` ENOTCONN, as a FUSE mount that dropped says, while the save tells the md5 cache
what it wrote): before, epoch 3's save waited for good (a watchdog stops it). Now that is an
ERROR line, the writer goes on, every epoch is saved and sent to Drive.

The tiniest real run against the emulator; the one fault injected is that ``os.stat``."""
from __future__ import annotations

import errno
import logging
import signal
import threading

from _tiny_run import tiny_run_config
from trainer import checkpoint as ckpt
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.engine import fit


class _Run(Callback):
    def __init__(self) -> None:
        self.run = None

    def on_fit_start(self, run) -> None:
        self.run = run


def test_an_error_after_a_saves_files_never_ends_the_writer(
        emulator, drive_env, local_state, tmp_path, one_torch_thread, monkeypatch, caplog):
    from trainer.drive import DriveFolder

    told = DriveFolder.known_md5
    failed: list[str] = []

    def mount_gone_once(self, path: str, md5: str) -> None:
        if not failed:
            failed.append(path)
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected", path)
        told(self, path, md5)
    monkeypatch.setattr(DriveFolder, "known_md5", mount_gone_once)
    out = tmp_path / "logs"
    cfg = load_config(tiny_run_config(tmp_path, epochs=3, save_minutes=0))
    seen, hung = _Run(), threading.Event()

    def watchdog() -> None:   # (the old code waited for the dead writer for good)
        hung.set()
        seen.run.stop.request(signal.SIGTERM)
    timer = threading.Timer(60.0, watchdog)
    timer.start()
    try:
        with caplog.at_level(logging.ERROR, logger="trainer"):
            result = fit(cfg, resume="none", callbacks=[seen])
    finally:
        timer.cancel()
    assert not hung.is_set() and failed == [str(out / "last.pt")]
    assert result.epochs_run == 3
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert said == [f"could not finish the save of last.pt, epoch_001.pt, best.pt in {out}: "
                    f"[Errno {errno.ENOTCONN}] Transport endpoint is not connected: "
                    f"'{out / 'last.pt'}'"], said
    for name in ("epoch_001.pt", "epoch_002.pt", "epoch_003.pt"):
        side = ckpt.read_sidecar(str(out / name))
        assert side is not None and emulator.find(f"runs/a/{name}")["md5Checksum"] == side.md5
