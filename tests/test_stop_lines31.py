"""A stop that no signal asked for (a DataLoader worker's death, a torchrun rank's loss) said
its save was verified on Drive "(0.1 s after the signal)": there was none. The seconds now
count from what asked for the stop, named as it is."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from trainer.state import Position
from trainer.stop_lines import stop_message
from trainer.stopping import WORKER_DEATH, StopFlag


def _stop(kind: str) -> StopFlag:
    stop = StopFlag(10)
    if kind == "SIGTERM":
        stop.request(15)
    elif kind == "worker":
        stop.request(WORKER_DEATH, "DataLoader worker (pid 7) is killed by signal: Killed")
    else:
        stop.lose_peer("rank 1")
    return stop


@pytest.mark.parametrize("kind, since", [("SIGTERM", "the signal"),
                                         ("worker", "the worker's death"),
                                         ("peer", "the loss of rank 1")])
def test_the_seconds_of_a_verified_stop_save_count_from_what_asked_for_it(kind, since):
    writer = SimpleNamespace(not_on_drive=lambda: [], other_run=[], verified=lambda n: True,
                             last_error=None)
    saver = SimpleNamespace(stop=_stop(kind), drive_spec="drive:runs/x", out_dir="/logs",
                            writer=writer, final_wait=SimpleNamespace(dest=lambda spec: spec))
    job = SimpleNamespace(written=True, name="autosave_00000002.pt", error=None)

    text = stop_message(saver, job, Position(0, 2, 2))

    assert text.startswith(f"stopped by {saver.stop.name} at epoch 1, iteration 2: "
                           "autosave_00000002.pt is saved and verified on drive:runs/x (")
    assert text.endswith(f" s after {since}); resume with --resume auto"), text
