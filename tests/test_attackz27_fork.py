"""A push's tree lock and the processes forked while it is held (attackz27).

The trainer pushes from its uploader thread while the training thread's DataLoader forks its
workers (``data.workers``, 2 by default, forked anew each epoch and for each evaluation). A
worker forked while a push holds its tree locks (:func:`drivestage.locks.tree_lock`) inherits
the lock files' descriptors. The push let go of its locks by closing its descriptors only, and
a flock lives until the last descriptor of its open file is closed: the worker kept the
push's lock for its whole life. The next push into that folder, the run's own next autosave
(mid-epoch) or a mirror of the folder above, then said ``another push into … is running …;
waiting for it`` and waited until the epoch's workers ended."""
from __future__ import annotations

import logging
import threading

import pytest

torch = pytest.importorskip("torch")

from drivestage.upload_tree import push  # noqa: E402

from _proxy import Proxy, Reply  # noqa: E402
from test_push27_nested import _Waits  # noqa: E402
from test_push_safety import _no_duplicates, _run_tree  # noqa: E402


class _Samples(torch.utils.data.Dataset):
    """What a worker loads: tensors, no files."""

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int):
        return torch.full((4,), float(i))


def test_a_data_loader_worker_forked_during_a_push_keeps_no_lock_after_it(
        emulator, local_state, monkeypatch):
    emulator.add_folder("runs/exp1/tb/deep")
    first, second = local_state / "a", local_state / "b"
    _run_tree(first)
    (second / "epoch_002.pt").parent.mkdir(parents=True)
    (second / "epoch_002.pt").write_bytes(b"w" * 3000)
    at_ids, forked = threading.Event(), threading.Event()

    def hold(status: int, headers: dict, body: bytes) -> Reply:
        if not at_ids.is_set():   # the first push, holding its locks
            at_ids.set()
            assert forked.wait(60)
        return Reply(status, headers, [body])

    errors: list = []

    def uploader(src) -> None:   # (the trainer's uploader thread)
        try:
            push(str(src), "drive:runs/exp1", jobs=1)
        except Exception as exc:  # reported below
            errors.append(exc)

    said = threading.Event()
    handler = _Waits(said)
    logging.getLogger("drivestage").addHandler(handler)
    try:
        with Proxy(emulator.url) as proxy:
            monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
            monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
            proxy.on("GET", r"generateIds", hold)
            pushing = threading.Thread(target=uploader, args=(first,))
            pushing.start()
            assert at_ids.wait(60)
            # The training thread starts an epoch: its DataLoader forks a worker now.
            batches = iter(torch.utils.data.DataLoader(_Samples(), batch_size=2,
                                                       num_workers=1))
            next(batches)
            forked.set()
            pushing.join(120)
            assert not pushing.is_alive() and not errors, errors
            # The epoch goes on (its worker lives); the run's next autosave is pushed.
            again = threading.Thread(target=uploader, args=(second,))
            again.start()
            done = threading.Thread(target=lambda: (again.join(120), said.set()))
            done.start()
            assert said.wait(120)
            del batches   # the epoch ends: its worker too
            again.join(120)
            done.join(120)
    finally:
        logging.getLogger("drivestage").removeHandler(handler)
    assert not errors, errors
    assert handler.said == []
    assert _no_duplicates(emulator) == {}
    names = {f["title"] for f in emulator.files() if not f["labels"]["trashed"]}
    assert {"epoch_001.pt", "epoch_002.pt"} <= names
