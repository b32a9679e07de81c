"""stop29: a SIGTERM sent to every process of a run (systemd stopping a service, Slurm's
``scancel``, ``kill -- -PGID``, ``pkill -f``) reached its DataLoader workers too. torch's
worker handler ended each at once, and the training process's SIGCHLD handler raised
``DataLoader worker (pid …) is killed by signal: Terminated.`` in the middle of a step:
``trainer train`` ended with that traceback, exit 1, and no stop save (found with a real run
and ``os.killpg``). Now a worker ignores SIGTERM while the training process runs: that
process saves at the iteration's end and lets its workers go.

Real forked workers of the trainer's loader over the synthetic VOC; the signal reaches the
workers only here (the training process's own part is the stop flag, tested elsewhere)."""
from __future__ import annotations

import os
import signal

from trainer.data.dataset import YoloDataset, build_loader, set_loader_epoch
from trainer.data.voc import read_annotation_file


def test_loader_workers_outlive_a_sigterm_sent_to_every_process_of_the_run(synth_voc):
    lines = read_annotation_file(synth_voc.train_lines_file)
    ds = YoloDataset(lines, 64, 3, train=True, epochs=2, seed=0)
    loader = build_loader(ds, 1, shuffle=True, workers=2, seed=0, drop_last=False)
    set_loader_epoch(loader, 0)
    it = iter(loader)
    got = [next(it), next(it)]      # one from each worker: both have run their initialiser
    workers = list(it._workers)
    for w in workers:
        os.kill(w.pid, signal.SIGTERM)
    got += list(it)                 # before: "DataLoader worker (pid …) is killed by signal"
    assert len(got) == len(lines)
    for w in workers:               # (ended by the loader's None; a loaded machine may be slow)
        w.join(30)
    assert [w.exitcode for w in workers] == [0, 0]   # ended with the loader, as always
