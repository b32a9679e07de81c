"""A Ctrl-C while a push waits for a nested push's lock (a notebook cell stopped while the
mirror of the folder above runs): the cell ends, no lock descriptor stays open, and the rerun
goes through once the other push ended (attackz27; held up)."""
from __future__ import annotations

import logging
import os
import signal
import threading

import pytest

from drivestage.upload_tree import push

from _proxy import Proxy, Reply
from test_push27_nested import _Waits, _live_in
from test_push_safety import _md5, _no_duplicates, _run_tree


def _lock_fds() -> set:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1].startswith("tree-"):
                out.add(fd)
        except OSError:
            pass
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_ctrl_c_while_a_push_waits_for_a_nested_one_ends_it_and_the_rerun_goes(
        emulator, local_state, monkeypatch):
    emulator.add_folder("runs/exp1/tb/deep")
    exp1 = emulator.find("runs/exp1")["id"]
    runs = local_state / "runs"
    files = _run_tree(runs / "exp1")
    at_ids, go_on = threading.Event(), threading.Event()

    def hold(status: int, headers: dict, body: bytes) -> Reply:
        if not at_ids.is_set():   # the mirror, holding its locks
            at_ids.set()
            assert go_on.wait(60)
        return Reply(status, headers, [body])

    errors: list = []

    def mirror() -> None:
        try:
            push(str(runs), "drive:runs", jobs=1)
        except Exception as exc:  # reported below
            errors.append(exc)

    waiting = threading.Event()
    handler = _Waits(waiting)
    logging.getLogger("drivestage").addHandler(handler)
    try:
        with Proxy(emulator.url) as proxy:
            monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
            monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
            proxy.on("GET", r"generateIds", hold)
            other = threading.Thread(target=mirror)
            other.start()
            assert at_ids.wait(60)
            before = _lock_fds()
            stopper = threading.Thread(target=lambda: (waiting.wait(60),
                                                       os.kill(os.getpid(), signal.SIGINT)))
            stopper.start()
            with pytest.raises(KeyboardInterrupt):
                push(str(runs / "exp1"), "drive:runs/exp1", jobs=1)   # the notebook cell
            stopper.join(60)
            assert _lock_fds() == before
            go_on.set()
            other.join(120)
            assert not errors, errors
            push(str(runs / "exp1"), "drive:runs/exp1", jobs=1)   # the cell run again
    finally:
        logging.getLogger("drivestage").removeHandler(handler)
    assert _no_duplicates(emulator) == {}
    assert _live_in(emulator, exp1) == {k: _md5(v) for k, v in files.items() if "/" not in k}
