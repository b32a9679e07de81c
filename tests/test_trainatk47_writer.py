"""trainatk47: the checkpoint writer's thread died when removing an older autosave failed
(``trainer.autosaves.prune``'s ``os.unlink``: a folder of that name, a file the user or a
flaky network file system will not let go: EIO, EPERM, EBUSY), after the save it had just
written. Nothing said so but a thread's traceback, and the next epoch's save waited for that
thread for good: the run hung without a line, its later checkpoints never written.

Now a removal that fails is one warning (the file stays: nothing is lost, the run folder holds
one autosave more), and the writer goes on; a failure after a job's files are written never
ends the writer's thread. The tiniest real run (tests/_tiny_run.py), an autosave at every
step; another process makes a folder ``autosave_00000001.pt`` in the run folder just before
the run's save of that name. A watchdog asks the run to stop if it hangs (the old code)."""
from __future__ import annotations

import logging
import os
import signal
import threading

from _tiny_run import tiny_run_config, warnings_said
from trainer import checkpoint as ckpt
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.engine import fit

NAME = "autosave_00000001.pt"


class _FolderMadeMeanwhile(Callback):
    """At iteration 1, before the save policy (callbacks fire in order, the policy last):
    another process makes a folder of the autosave's name, with a file in it."""

    def __init__(self, out_dir) -> None:
        self.out_dir, self.run = out_dir, None

    def on_fit_start(self, run) -> None:
        self.run = run

    def on_train_batch_end(self, run, pos, logs) -> None:
        if pos.iteration == 1:
            (self.out_dir / NAME).mkdir()
            (self.out_dir / NAME / "theirs.txt").write_text("another process's")


def test_an_older_autosave_that_cannot_be_removed_never_stops_the_writer(
        tmp_path, one_torch_thread, caplog):
    out = tmp_path / "logs"
    cfg = load_config(tiny_run_config(tmp_path, epochs=3, logs=None, save_minutes=1e-6))
    made = _FolderMadeMeanwhile(out)
    hung = threading.Event()

    def watchdog() -> None:   # (the old code waited for the dead writer for good)
        hung.set()
        made.run.stop.request(signal.SIGTERM)
    timer = threading.Timer(60.0, watchdog)
    timer.start()
    try:
        with caplog.at_level(logging.WARNING):
            result = fit(cfg, resume="none", callbacks=[made])
    finally:
        timer.cancel()
    assert not hung.is_set()
    assert result.epochs_run == 3
    last = ckpt.read_sidecar(str(out / "last.pt"))
    assert last is not None and last.epoch == 3
    assert (out / "epoch_003.pt").is_file()
    assert (out / NAME / "theirs.txt").read_text() == "another process's"   # (kept)
    said = [r.getMessage() for r in warnings_said(caplog)]
    assert any(m.startswith(f"could not write {NAME} in {out}: [Errno 21] Is a directory")
               for m in said), said
    assert f"could not remove the older autosave {out / NAME} (train.save_minutes keeps " \
           f"the newest 2): [Errno 21] Is a directory: '{out / NAME}'; it stays" in said, said
    assert not [t for t in threading.enumerate() if t.name == "trainer-writer"]
    # The folder and the newest two autosaves, each whole: which two depends on which
    # iterations' autosaves the busy writer took (4 and 6 in a CI run, 5 and 6 here).
    names = sorted(p for p in os.listdir(out) if p.startswith("autosave_"))
    pairs = sorted({p.rsplit(".", 1)[0] for p in names if p != NAME})
    assert NAME in names and len(pairs) == 2 and pairs[-1] == "autosave_00000006", names
    assert sorted(names) == sorted([NAME] + [f"{p}.{x}" for p in pairs for x in ("json", "pt")])
