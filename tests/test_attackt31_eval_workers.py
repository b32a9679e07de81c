"""attackt31: ``trainer eval`` whose DataLoader worker is killed (the OOM killer, as in
training: data.workers loaders read the validation images) or runs out of memory ended in
torch's traceback (`RuntimeError: DataLoader worker (pid N) is killed by signal: Killed.`,
`MemoryError: Caught MemoryError in DataLoader worker process 0.`); training's own loop says
it in one line since worker30. Now eval says it in one line, exit 1, with what to change."""
from __future__ import annotations

import multiprocessing
import os
import re
import signal

import pytest
import torch
from click.testing import CliRunner

from trainer.cli import cli
from trainer.data.dataset import EvalDataset
from trainer.model import YoloV4Tiny

_MAIN = os.getpid()


@pytest.mark.parametrize("how", ["killed", "memory"])
def test_eval_whose_loader_worker_is_killed_ends_in_one_line(tiny_config, tmp_path, monkeypatch,
                                                             how):
    read = EvalDataset.__getitem__

    def getitem(self, index):
        if os.getpid() != _MAIN and how == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        if os.getpid() != _MAIN:
            raise MemoryError("Unable to allocate 3.52 GiB for an array")
        return read(self, index)

    monkeypatch.setattr(EvalDataset, "__getitem__", getitem)
    torch.save({"model": YoloV4Tiny(3, input_size=64, width=0.25).state_dict()},
               tmp_path / "best.pt")
    before = set(multiprocessing.active_children())
    r = CliRunner().invoke(cli, ["eval", "-c", tiny_config(**{"data.workers": 1}), "-w",
                                 str(tmp_path / "best.pt")])

    assert r.exit_code == 1 and not isinstance(r.exception, (RuntimeError, MemoryError)), \
        r.exception
    # No worker left running, though the error is kept (as a notebook keeps the last one):
    # it kept the loader, its workers holding their memory until a garbage collection,
    # which then waited up to 5 s for each (evalworkers38).
    assert [p for p in multiprocessing.active_children() if p not in before] == []
    line = r.stderr.strip().splitlines()[-1]
    if how == "memory":
        assert line == (
            "Error: a DataLoader worker ran out of memory while the validation images were read "
            "(Caught "
            "MemoryError in DataLoader worker process 0: MemoryError: Unable to allocate 3.52 GiB "
            "for an array: out of memory? lower data.workers (0 reads them in this process) and "
            "run it again)"), line
        return
    assert re.fullmatch(r"Error: a DataLoader worker died while the validation images were read "
                        r"\(DataLoader worker \(pid(\(s\))? \d+\) (exited unexpectedly|is killed "
                        r"by signal: Killed): out of memory\? lower data\.workers \(0 reads them "
                        r"in this process\) and run it again\)", line), line
