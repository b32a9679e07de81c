"""grace32: ``--resume auto`` and a stop's copy of the run's state kept in /tmp.

A stop whose save the run folder did not take keeps the state in ``/tmp/trainer-stop-…`` or
``/tmp/trainer-rescued-…`` and names it (`--resume <path> goes on from it`). The same command
run again (``--resume auto``) never looked there: the run trained from the older state in the
run folder (or on Drive), the copy only warned about once training had begun. Auto now goes on
from the furthest such copy of the run it chose: same run, its sidecar naming its bytes,
further on, saved after every checkpoint of the run seen (trainer/kept_copies.py).
"""
from __future__ import annotations

import logging
import os

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from trainer import checkpoint as ckpt
from trainer import distributed, resume
from trainer.config import load_config

RUN = "20261205-000000-abcdef"


def _state(run: str, epoch: int, iteration: int, epoch_iteration: int) -> dict:
    return {"format_version": ckpt.FORMAT_VERSION, "model": {}, "optimizer": {},
            "epoch": epoch, "iteration": iteration, "epoch_iteration": epoch_iteration,
            "config": {}, "run": run}


def _kept(tmp, folder: str, run: str, iteration: int, saved: float) -> str:
    os.makedirs(tmp / folder)
    name = f"autosave_{iteration:08d}.pt"
    return ckpt.save_checkpoint(_state(run, 0, iteration, iteration), str(tmp / folder / name),
                                saved=saved)


def _choose(cfg) -> resume.Start:
    return resume.choose(cfg, "auto", distributed.env_info(), None)


def test_auto_goes_on_from_this_runs_further_copy_kept_by_a_stop(tiny_config, own_tempdir,
                                                                    caplog):
    cfg = load_config(tiny_config(**{"train.epochs": 3}))
    os.makedirs(cfg.train.out_dir)
    here = ckpt.save_checkpoint(_state(RUN, 0, 2, 2),
                                os.path.join(cfg.train.out_dir, "autosave_00000002.pt"),
                                saved=1000.0)
    kept = _kept(own_tempdir, "trainer-stop-a1", RUN, 4, saved=2000.0)
    # Passed over: another run's; one left behind (saved before the run folder's newest: the
    # run went back since); and one further on whose bytes are not what its sidecar names.
    _kept(own_tempdir, "trainer-rescued-b2", "20261205-111111-other0", 9, saved=3000.0)
    _kept(own_tempdir, "trainer-rescued-c3", RUN, 7, saved=500.0)
    bad = _kept(own_tempdir, "trainer-stop-d4", RUN, 6, saved=2500.0)
    with open(bad, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))

    with caplog.at_level(logging.WARNING, logger="trainer"):
        start = _choose(cfg)

    assert (start.path, start.where, start.given) == (kept, kept, False), start
    assert ckpt.load_checkpoint(start.path)["iteration"] == 4
    assert f"--resume auto goes on from {kept} (epoch 1, iteration 4), this run's state kept " \
           f"on this machine by an earlier stop: further on than {here} (epoch 1, iteration " \
           f"2), and saved after it" in caplog.text, caplog.text
    assert os.path.isfile(here)   # (nothing in the run folder moved)


def test_a_copy_older_than_the_run_folders_newest_is_not_taken(tiny_config, own_tempdir):
    cfg = load_config(tiny_config())
    os.makedirs(cfg.train.out_dir)
    here = ckpt.save_checkpoint(_state(RUN, 0, 5, 5),
                                os.path.join(cfg.train.out_dir, "autosave_00000005.pt"),
                                saved=3000.0)
    _kept(own_tempdir, "trainer-stop-a1", RUN, 4, saved=2000.0)   # (the run went on past it)
    assert _choose(cfg).path == here


def test_a_copy_that_fails_the_resume_checks_is_passed_over_and_left_as_it_is(
        tiny_config, own_tempdir):
    from trainer.errors import UnusableCheckpointError

    cfg = load_config(tiny_config())
    os.makedirs(cfg.train.out_dir)
    here = ckpt.save_checkpoint(_state(RUN, 0, 2, 2),
                                os.path.join(cfg.train.out_dir, "autosave_00000002.pt"),
                                saved=1000.0)
    kept = _kept(own_tempdir, "trainer-stop-a1", RUN, 4, saved=2000.0)

    def vet(state, where):   # (NaN weights, say: trainer.resume_checks)
        if state["iteration"] == 4:
            raise UnusableCheckpointError(f"{where}: NaN", where, "NaN weights")

    start = resume.choose(cfg, "auto", distributed.env_info(), None, vet)
    assert start.path == here and start.passed_over == ()   # (the copy is no run folder file)
    assert os.path.isfile(kept)
