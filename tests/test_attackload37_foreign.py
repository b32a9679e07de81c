"""attackload37: which failures of torch's load are the file's own when its sidecar vouches
for its bytes. loadfail37 stops ``--resume auto`` on any file torch does not load whose
bytes are those its sidecar vouches for (LoadFailedError: "loading it failed on this
machine ... Load it with the torch that wrote it or a newer one"), and passes over as
damaged what the content checks after a load find (the bytes' own, on any machine).

A pickled ``posix.system`` is as much the bytes' own: no torch ever loads it as weights and
no trainer saves one, so no torch, memory or disk makes it load; the stop's advice (a newer
torch, then the same command) led nowhere, and the same stop came again. It is passed over
as foreign, as before loadfail37, with the line that says what it holds. A name this torch
does not know (``torch.float99``: a newer torch's type) is still the stop: a newer torch may
well load it. Real checkpoints written by the trainer's own save (its sidecar vouching)."""
from __future__ import annotations

import logging
import os

import pytest
import torch

from test_loadfail37_find import _two_epochs
from test_trainer22_hostile import _md5s, _small_run
from test_trainer23_fallback import _save, _warnings
from trainer import checkpoint as ckpt
from trainer.errors import LoadFailedError


def _with(run, logs, value) -> str:
    """epoch_001.pt as saved, then epoch_002.pt and last.pt holding ``value`` too (their
    sidecars, the trainer's save's, vouch for their bytes)."""
    _save(run, logs, "epoch_001.pt", 1, 1000.0)
    return _save(run, logs, "epoch_002.pt", 2, 2000.0, copies=["last.pt"],
                 change=lambda state: state.update(hook=value))


def test_a_vouched_file_holding_a_pickled_function_is_passed_over_as_foreign(
        tiny_config, tmp_path, caplog):
    logs = tmp_path / "logs"
    path = _with(_small_run(tiny_config, logs), logs, os.system)
    before = _md5s(logs)

    with caplog.at_level(logging.WARNING):
        found = ckpt.find_latest(str(logs))

    assert found == str(logs / "epoch_001.pt")
    said = _warnings(caplog)
    assert said == [
        f"skipping {path} holds a pickled Python object (posix.system), not only tensors; "
        f"such objects are never loaded (a file from anywhere could run code): resume from a "
        f"checkpoint this trainer wrote",
        f"skipping {logs / 'last.pt'} holds a pickled Python object (posix.system), not only "
        f"tensors; such objects are never loaded (a file from anywhere could run code): resume "
        f"from a checkpoint this trainer wrote"], said
    assert _md5s(logs) == before


def _unknown_here() -> object:
    """A function pickled as ``torch.float99``: a name this torch lacks (as a newer torch's
    type would be), once the save is done."""
    def float99():
        return None
    float99.__module__, float99.__qualname__ = "torch", "float99"
    return float99


def test_a_vouched_file_holding_a_name_this_torch_lacks_still_stops(tiny_config, tmp_path):
    logs = tmp_path / "logs"
    value = _unknown_here()
    torch.float99 = value
    try:
        path = _with(_small_run(tiny_config, logs), logs, value)
    finally:
        del torch.float99
    before = _md5s(logs)

    with pytest.raises(LoadFailedError) as stopped:
        ckpt.find_latest(str(logs))

    assert stopped.value.path == path
    assert "(it holds a pickled object (torch.float99) this torch does not load)" in \
        str(stopped.value)
    assert _md5s(logs) == before
