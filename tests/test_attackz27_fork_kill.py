"""A push SIGKILLed while a process it forked lives on (attackz27).

A process forked while a push holds its tree locks (:func:`drivestage.locks.tree_lock`) got
the lock files' descriptors. A push that ends unlocks them (tests/test_attackz27_fork.py),
but a push SIGKILLed (Colab's kernel killed for its memory) runs no unlock: the locks stayed
held for as long as the forked process lived (a helper the notebook started with
multiprocessing), and every later push into that folder, or into one above or below it,
said ``… is running on this machine; waiting for it`` and waited for good."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading

import drivestage
from drivestage.locks import tree_lock

from test_push27_nested import _Waits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(drivestage.__file__)))
SCRIPT = """
import multiprocessing, os, signal, sys, time
from drivestage.locks import tree_lock

def helps(running):
    running.set()
    time.sleep(300)

if __name__ == "__main__":
    fork = multiprocessing.get_context("fork")
    with tree_lock([(sys.argv[1], "drive:runs/exp1"), (sys.argv[2], "drive:runs")]):
        running = fork.Event()
        helper = fork.Process(target=helps, args=(running,))
        helper.start()
        assert running.wait(60)   # (it runs its own code now: what a fork does, done)
        print(helper.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_process_forked_by_a_push_killed_since_holds_none_of_its_locks(local_state):
    places = ["drive at |id:EXP1", "drive at |id:RUNS"]
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, *places], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=REPO))
    helper = int(proc.stdout.readline())
    proc.stdout.close()
    assert proc.wait(60) == -signal.SIGKILL
    said = threading.Event()
    handler = _Waits(said)
    logging.getLogger("drivestage").addHandler(handler)
    try:
        def mirror() -> None:   # a push into the folder above, afterwards
            with tree_lock([(places[1], "drive:runs")]):
                pass
            said.set()
        pushing = threading.Thread(target=mirror)
        pushing.start()
        assert said.wait(60)
    finally:
        os.kill(helper, signal.SIGKILL)   # (lets the push go on, if it waits)
        pushing.join(60)
        logging.getLogger("drivestage").removeHandler(handler)
    assert handler.said == []



def test_a_child_forked_inside_a_tree_lock_that_leaves_it_closes_none_of_its_own_files(
        local_state):
    """A child that goes on through the push's code (``os.fork`` inside the lock's block)
    leaves the block: the descriptors it closed at the fork may number files of its own by
    then, and stay open."""
    pid, mine = -1, []
    try:
        with tree_lock([("drive at |id:EXP1", "drive:runs/exp1")]):
            pid = os.fork()
            if pid == 0:   # a file of its own, under the lowest free number: the lock's
                mine.append(os.open(os.devnull, os.O_RDONLY))
        if pid == 0:
            try:
                os.fstat(mine[0])
            except OSError:
                os._exit(1)   # closed by the lock's end
            os._exit(0)
    finally:
        if pid == 0:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
