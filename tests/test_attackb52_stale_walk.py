"""attackb52: ``push --delete`` of a folder of runs beside a push of one run inside it (a
trainer's mirror, its hook's push of a checkpoint just saved) into the Drive folder below.

A push takes the lock of DEST as written, walks SRC, then takes the locks of DEST's folders
by id (those above it too: a push into a run's folder writes into the folder of runs). The
walk is done before the second: another push into a folder inside DEST may hold it for
minutes (a large checkpoint's upload). What the other push sent
meanwhile, a file written into SRC after this push's walk, is on Drive when this push lists
DEST, and missing from its walk: ``--delete`` trashed it, though SRC holds it (on main exit 0: a
``drivestage mirror``'s run, ``exp/epoch_002.pt``, ``exp/epoch_003.pt`` (the run's newest),
their sidecars and ``exp/events.2`` trashed; the trainer's mirror, whose run folder is
marked, keeps its checkpoints by the run-folder rules: ``exp/events.2`` trashed). Drive held
no copy of them until the next push sent them again: a runtime that ended then lost them,
and a resume from Drive took the run's older checkpoint.

The other push is run where the first waits for the lock (its walk done): the real
``locks.locked`` is called once it ended, as a lock held by it would have let go then."""
from __future__ import annotations

import hashlib
import json
import logging
import os

import pytest

from drivestage import push_job
from drivestage.upload_tree import push


def _remote(emulator, top: str) -> set[str]:
    """The names of the live files in the Drive folder ``top``."""
    folder = emulator.find(top)["id"]
    return {f["title"] for f in emulator.files() if not f.get("labels", {}).get("trashed")
            and any(p["id"] == folder for p in f.get("parents", ()))}


def _save(src, epoch: int) -> None:
    data = os.urandom(1000 + epoch)
    (src / f"epoch_{epoch:03d}.pt").write_bytes(data)
    (src / f"epoch_{epoch:03d}.pt.json").write_text(json.dumps(
        {"epoch": epoch, "md5": hashlib.md5(data).hexdigest(), "size": len(data)}))


@pytest.mark.parametrize("run_folder", [False, True], ids=["mirror", "trainers_mirror"])
def test_a_push_delete_keeps_what_another_push_sent_of_files_written_after_its_walk(
        emulator, store, local_state, monkeypatch, caplog, run_folder):
    runs = local_state / "runs"
    src = runs / "exp"
    src.mkdir(parents=True)
    (src / "train.log").write_text("epoch 1\n")
    _save(src, 1)
    push(str(src), "runs/exp", store=store, run_folder=run_folder)
    real, other = push_job.locked, []

    def other_push_first(lineage, work):
        if not other:   # (the other push saves and sends while this one waits for the lock)
            other.append(1)
            _save(src, 2)
            (src / "events.2").write_text("e2")
            _save(src, 3)
            push(str(src), "runs/exp", store=store, run_folder=run_folder)
            assert _remote(emulator, "runs/exp") == {
                "train.log", "events.2", *(f"epoch_00{i}.pt{s}" for i in (1, 2, 3)
                                           for s in ("", ".json"))}
        return real(lineage, work)

    monkeypatch.setattr(push_job, "locked", other_push_first)
    caplog.set_level(logging.INFO, "drivestage.upload_tree")
    result = push(str(runs), "runs", store=store, delete=True)
    assert other
    assert result.deleted == []
    assert ("left drive:runs/exp/epoch_002.pt and 4 more on the store: SRC holds them now, "
            "written after this push read SRC (the next push compares them)" if not run_folder
            else "left drive:runs/exp/events.2 on the store: SRC holds it now, written after "
            "this push read SRC (the next push compares it)") in caplog.messages
    assert _remote(emulator, "runs/exp") == {
        "train.log", "events.2", *(f"epoch_00{i}.pt{s}" for i in (1, 2, 3)
                                   for s in ("", ".json"))}
