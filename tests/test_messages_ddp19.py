"""The messages of a multi-machine DDP resume whose chosen bytes another machine cannot load
as rank 0 chose them (tests/test_attack_ddp19.py drives the two-machine runs)."""
from __future__ import annotations

import logging

import pytest

from _messages import error_text, log_text, renders, shown
from test_attack_ddp19 import LOGS, _chosen_on_drive, _md5, _replace_in_place, _state


@pytest.fixture
def client(emulator, drive_env, local_state):
    from drivestage.drive import connect

    return connect(api_root=emulator.url, token="test-token").service


@renders("changed on Drive while the run started (rank 0 loads md5")
def test_chosen_bytes_replaced_on_drive(emulator, client, tmp_path):
    from trainer.errors import CheckpointError
    from trainer.resume import ensure_local_checkpoint

    emulator.add_file(f"{LOGS}/epoch_004.pt", _state(4, 1))
    chosen = _chosen_on_drive(emulator, _state(4, 1))
    _replace_in_place(client, chosen.entry.id, _state(4, 2))
    with pytest.raises(CheckpointError) as err:
        ensure_local_checkpoint(str(tmp_path / "epoch_004.pt"), chosen)
    shown("changed on Drive while the run started (rank 0 loads md5", error_text(err.value))


@renders("rank 0 resumes from … (md5 …), … and Drive does not hold; put that file there on "
         "every machine")
def test_chosen_bytes_only_on_rank0s_machine(tmp_path):
    from trainer.errors import CheckpointError
    from trainer.resume import Chosen, ensure_local_checkpoint

    data = _state(4, 1)
    with pytest.raises(CheckpointError) as err:
        ensure_local_checkpoint(str(tmp_path / "last.pt"),
                                Chosen("/content/logs/last.pt", _md5(data), len(data)))
    shown("rank 0 resumes from … (md5 …), … and Drive does not hold; put that file there on "
          "every machine", error_text(err.value))


@renders("on this machine is not the checkpoint rank 0 resumes from (md5")
def test_another_file_of_that_name_here(emulator, drive_env, local_state, tmp_path, caplog):
    from trainer.resume import ensure_local_checkpoint

    emulator.add_file(f"{LOGS}/best.pt", _state(4, 1))
    chosen = _chosen_on_drive(emulator, _state(4, 1), "best.pt")
    (tmp_path / "best.pt").write_bytes(_state(3, 7))
    with caplog.at_level(logging.WARNING, logger="trainer"):
        ensure_local_checkpoint(str(tmp_path / "best.pt"), chosen)
    shown("on this machine is not the checkpoint rank 0 resumes from (md5",
          log_text(caplog.records))
