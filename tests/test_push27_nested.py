"""Two pushes at once on one machine whose Drive folders nest, or which name one folder two
ways that no lock told apart.

``drivestage mirror ./runs drive:runs`` runs while the trainer's hooks push ``./runs/exp1``
to ``drive:runs/exp1``: both list ``runs/exp1``, find its new files missing and create them.
Each push held the lock of its own folder only, so neither waited: every new file of
``exp1`` was made twice (the create-id records of the two pushes, written one over the other,
did not stop it). Likewise ``drive:`` (the top of My Drive) and ``drive:id:<its id>`` were two
lock places for one folder."""
from __future__ import annotations

import logging
import threading

import pytest

from drivestage.upload_tree import push

from _at_once import Waits as _Waits, live_in as _live_in, second_at_the_ids  # noqa: F401
from _proxy import Proxy, Reply
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)
from test_push_safety import _md5, _no_duplicates, _run_tree


def _folders(emulator) -> str:
    """``runs/exp1`` and the subfolders of the tree, already on Drive (the first ids a push
    asks Drive for are then its new files'); the id of ``exp1``."""
    emulator.add_folder("runs/exp1/tb/deep")
    return emulator.find("runs/exp1")["id"]


def _two_at_once(emulator, monkeypatch, first: tuple, second: tuple) -> list:
    """``push(*first)``; when it asks Drive for its new files' ids (it has listed its folders,
    decided what to create and read the ids recorded for them), ``push(*second)`` runs in a
    thread, whole, unless it says it waits for the first. What the pushes said about waiting."""
    with Proxy(emulator.url) as proxy:   # (both pushes go through it: one API root)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
        with second_at_the_ids(proxy, lambda: push(*second, jobs=1)) as said:
            push(*first, jobs=1)
    return said


@pytest.mark.parametrize("outer_first", [True, False], ids=["mirror-first", "hooks-first"])
def test_a_push_into_a_folder_inside_another_push_s_folder_waits_for_it(
        emulator, local_state, monkeypatch, outer_first):
    exp1 = _folders(emulator)
    runs = local_state / "runs"
    files = _run_tree(runs / "exp1")
    outer = (str(runs), "drive:runs")
    inner = (str(runs / "exp1"), "drive:runs/exp1")
    said = _two_at_once(emulator, monkeypatch, *((outer, inner) if outer_first
                                                 else (inner, outer)))
    assert _no_duplicates(emulator) == {}
    top = {k: _md5(v) for k, v in files.items() if "/" not in k}
    assert _live_in(emulator, exp1) == top
    if outer_first:
        assert said == ["another push into drive:runs, which holds drive:runs/exp1, is "
                        "running in this process; waiting for it"]
    else:
        assert said == ["another push into drive:runs or a folder inside it is running in "
                        "this process; waiting for it"]


def test_two_pushes_from_other_local_folders_into_nested_drive_folders(
        emulator, local_state, monkeypatch):
    """Nested on Drive only (``./a`` -> ``drive:runs``, ``./b`` -> ``drive:runs/exp1``):
    their create-id records are of other local files, and every file both make was made
    twice."""
    exp1 = _folders(emulator)
    a, b = local_state / "a", local_state / "b"
    _run_tree(a / "exp1")
    files = _run_tree(b)
    _two_at_once(emulator, monkeypatch, (str(a), "drive:runs"), (str(b), "drive:runs/exp1"))
    assert _no_duplicates(emulator) == {}
    assert set(_live_in(emulator, exp1)) == {k for k in files if "/" not in k}


def test_my_drive_s_top_by_path_and_by_its_id_is_one_lock(emulator, local_state, monkeypatch):
    root = emulator.root_id()
    src = local_state / "logs"
    files = _run_tree(src)
    _two_at_once(emulator, monkeypatch, (str(src), "drive:"), (str(src), f"drive:id:{root}"))
    assert _no_duplicates(emulator) == {}
    top = {k: _md5(v) for k, v in files.items() if "/" not in k}
    assert _live_in(emulator, root) == top


def test_a_ctrl_c_at_any_point_of_a_tree_lock_leaves_every_lock_free(tmp_path, monkeypatch):
    """The locks of a push's folder and of the folders above it (drivestage.locks): a Ctrl-C
    wherever the main thread is while they are taken, held or given back leaves them all
    free for the next push (into the folder, above it or below it)."""
    import os

    import drivestage
    from drivestage.locks import tree_lock

    from test_interrupt_locks import _each_ctrl_c, _ends_within

    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    root = os.path.dirname(drivestage.__file__)
    lineage = [("t:exp1", "drive:runs/exp1"), ("t:runs", "drive:runs"), ("t:top", "drive:")]

    def work() -> None:
        with tree_lock(lineage):
            pass

    def others() -> None:
        with tree_lock(lineage[1:]):   # a push into the folder above
            pass
        with tree_lock([("t:exp1/tb", "drive:runs/exp1/tb")] + lineage):   # below
            pass

    landed = 0
    for point in _each_ctrl_c(work, only_under=root):
        landed += 1
        assert _ends_within(others, 5), f"a lock stayed held after a Ctrl-C at {point}"
    assert landed >= 5


def test_a_push_waits_for_a_mirror_of_the_folder_above_in_another_process_until_it_dies(
        emulator, local_state, monkeypatch):
    """Two processes: `drivestage push ./runs drive:runs` (a mirror's period), held by the
    proxy once it has listed and asks for its new files' ids, holds the locks; a push of
    ./runs/exp1 into drive:runs/exp1 in this process says it waits, and goes on once the
    other is SIGKILLed (the kernel drops a dead process's locks): each file made once."""
    import calendar
    import os
    import re
    import socket
    import subprocess
    import sys
    import time

    from _kill import sigkill_when

    exp1 = _folders(emulator)
    runs = local_state / "runs"
    files = _run_tree(runs / "exp1")
    held, release, waits = threading.Event(), threading.Event(), threading.Event()

    def hold(status: int, headers: dict, body: bytes) -> Reply:
        if not held.is_set():
            held.set()
            release.wait(60)
        return Reply(status, headers, [body])
    handler = _Waits(waits)
    logging.getLogger("drivestage").addHandler(handler)
    errors: list = []
    try:
        with Proxy(emulator.url) as proxy:
            proxy.on("GET", r"generateIds", hold, times=1)
            env = dict(os.environ, DRIVESTAGE_API_ROOT=proxy.url, DRIVESTAGE_TOKEN="test-token")
            started = time.time()
            child = cli_server().popen(["push", str(runs),
                                        "drive:runs", "--jobs", "1"], env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                assert held.wait(120), "the mirror never asked for its files' ids"
                monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)   # (one API root)
                monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")

                def inner() -> None:
                    try:
                        push(str(runs / "exp1"), "drive:runs/exp1", jobs=1)
                    except Exception as exc:  # reported below
                        errors.append(exc)
                second = threading.Thread(target=inner)
                second.start()
                assert waits.wait(60), "the push into drive:runs/exp1 never waited"
                sigkill_when(child, lambda: True)
            finally:
                release.set()
                if child.poll() is None:
                    child.kill()
            second.join(60)
            assert not second.is_alive()
    finally:
        logging.getLogger("drivestage").removeHandler(handler)
    assert not errors, errors
    # Who holds it, from its holder file (lock28): the pid, the host, since when, the command.
    assert len(handler.said) == 1
    said = re.fullmatch(r"another push into drive:runs, which holds drive:runs/exp1, is "
                        r"running on this machine \(pid (\d+) on (.+), since (\d{4}-\d\d-\d\d "
                        r"\d\d:\d\d:\d\d) UTC: (.*)\); waiting for it", handler.said[0])
    assert said, handler.said
    assert (int(said[1]), said[2]) == (child.pid, socket.gethostname())
    assert abs(calendar.timegm(time.strptime(said[3], "%Y-%m-%d %H:%M:%S")) - started) < 120
    assert said[4] == f"drivestage push {runs} drive:runs --jobs 1"
    assert _no_duplicates(emulator) == {}
    top = {k: _md5(v) for k, v in files.items() if "/" not in k}
    assert _live_in(emulator, exp1) == top
