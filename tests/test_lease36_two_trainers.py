"""lease36: two live trainers of one run (a Colab notebook reconnected to a new runtime and
started again while the old runtime still trained; two notebooks of one config) both pushed
into drive.logs, replacing each other's checkpoints there, each "every upload verified".
Now rank 0 holds a lease on drive.logs (trainer.lease): a second trainer is refused while
the first renews it, takes it over once the first is gone (no one's action: the reconnect
after the old runtime died), or at once with --take-over, and the first then stops pushing,
saves here and exits 1.

Real trainer processes on the tiny synthetic dataset against the emulator; every wait is on
an event (a line on a trainer's stderr, a file on the emulator), bounded."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from _trainer_proc import TrainerProcess, start_trainer
from trainer.cli import cli

pytestmark = pytest.mark.slow

LOGS = "drive:runs/exp"
#: 3 s renewals: a claim is stale after 2 x 3 + 3 s by its reader's clock. (At 0.01, 1.8 s,
#: a live trainer whose renewal thread a loaded machine starved that long was read as gone by
#: its rival and taken over: flake41's attacklease36_outage, leaseflake44.) Its cost: the
#: real settle wait, min(2, period / 2), 1.5 s not 0.3 s; a refusal's watch poll the same.
LEASE = "drive.lease_minutes=0.05"
#: 0.6 s renewals (a 0.3 s settle) for a trainer whose claim no live rival reads by its period.
SHORT = "drive.lease_minutes=0.01"


@pytest.fixture(autouse=True)
def _real_settle(monkeypatch):
    """The race these tests make is what the lease's settle wait bounds: the real wait, not
    the suite's 0 (tests/conftest.py)."""
    monkeypatch.delenv("TRAINER_LEASE_SETTLE", raising=False)


#: Epochs of a trainer that trains until the test stops it (an epoch takes 0.2 s here).
LONG = 1000


def _spawn(path: str, tmp_path, name: str, *extra: str) -> "tuple[TrainerProcess, str]":
    """A trainer in a process of its own, with a state folder of its own (another machine),
    forked with torch imported (tests/_trainer_proc.py: the import was a third of the test)."""
    err = str(tmp_path / f"{name}.err")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
               DRIVESTAGE_STATE_DIR=str(tmp_path / f"state-{name}"), OMP_NUM_THREADS="1")
    args = ["train", "-c", path, "--set", f"train.out_dir={tmp_path / name}", "--set", LEASE,
            *extra]
    return start_trainer(args, env=env, stderr=err), err


def _until(what, proc: "TrainerProcess | subprocess.Popen | None" = None, limit: float = 120.0):
    """Poll ``what()`` until it is truthy (bounded; the process must still run)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        got = what()
        if got:
            return got
        assert proc is None or proc.poll() is None, f"exited {proc.returncode} first"
        time.sleep(0.1)
    raise AssertionError("not within the bound")


def _names(store) -> list[str]:
    from drivestage.errors import NotFoundError
    from drivestage.paths import StorePath

    try:
        folder = store.resolve(StorePath.parse("runs/exp"))
    except NotFoundError:
        return []
    store.forget_folders()
    return sorted(e.name for e in store.list(folder))


def _claims(store) -> list[str]:
    return [n for n in _names(store) if n.startswith("trainer-lease-")]


def _stop(proc: "TrainerProcess | subprocess.Popen") -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)


#: The planted claim's name (:func:`_plant`).
CLAIM = "trainer-lease-0123456789abcdef.json"


def _plant(emulator, host: str) -> None:
    """A claim of another machine, as its trainer wrote it before its runtime died (made in
    the emulator's store: in this process a client's request would wait for the answer
    whose sending plants it, :func:`_until_listed`)."""
    emulator.add_file("runs/exp/" + CLAIM,
                      json.dumps({"owner": "0123456789abcdef", "host": host, "pid": 4242,
                                  "machine": "deadbeef", "generation": 1}).encode())


@contextlib.contextmanager
def _until_listed(folder: str, plant, renew):
    """``plant`` as the emulator answers the first request made of it within the block, then
    ``renew`` as it answers each later one until the first listing of ``folder``'s children
    (not at that one: its answer, made before its access line is logged, shows the claim as
    last renewed, and the next listings the same date: the claim's holder died then)."""
    import threading

    state = {"planted": False, "listed": False}
    lock = threading.Lock()

    def act(line: str) -> None:
        with lock:
            if state["listed"]:
                return
            if not state["planted"]:
                state["planted"] = True
                plant()
            elif "GET " in line and folder in line and "parents" in line:
                state["listed"] = True
            else:
                renew()

    with _on_each_request(act):
        yield
    assert state["listed"], "the trainer never listed the run folder"


@contextlib.contextmanager
def _on_each_request(act):
    """Run ``act(line)`` as the emulator answers each request made of it within the block
    (``line``: its access line, logged before the answer's body is sent, so the client that
    asked waits for ``act`` to end)."""
    import logging

    class _Hook(logging.Handler):
        def emit(self, record):
            act(record.getMessage())

    log = logging.getLogger("drivestage.emulator.handler")
    level, hook = log.level, _Hook()
    log.setLevel(logging.DEBUG)
    log.addHandler(hook)
    try:
        yield
    finally:
        log.removeHandler(hook)
        log.setLevel(level)


def test_a_dead_runtimes_lease_is_taken_over_with_no_action(drive_env, emulator, store,
                                                             tiny_config, one_torch_thread):
    """The main flow: the old runtime died (its claim stays, renewed no more); the trainer
    of the new runtime waits for it to lapse, takes it over, and trains."""
    from drivestage.paths import StorePath

    run = store.make_folders(StorePath.parse("runs/exp")).id
    path = tiny_config(**{"drive.logs": LOGS, "train.epochs": 1, "train.freeze_epochs": 0})
    # The claim is planted as the trainer's first request to Drive is answered (its start,
    # seconds here, more on busy cores, then counts for nothing) and renewed at each of its
    # requests until its first listing of the run folder (the old runtime dies just then):
    # the trainer watches it live whatever the requests between took on busy cores, then
    # takes it over once stale (0.6 s renewals: after 1.8 s, not the 3.6 s of 1.2 s ones
    # that were the margin for those requests).
    with _until_listed(run, lambda: _plant(emulator, "old-runtime"),
                       lambda: emulator.store.set_properties(
                           emulator.find("runs/exp/" + CLAIM)["id"], [], touch=True)):
        r = CliRunner().invoke(cli, ["train", "-c", path, "--set", SHORT])
    assert r.exit_code == 0, (r.output, r.exception)
    assert ("drive:runs/exp: the run's lease is held by pid 4242 on old-runtime, last renewed "
            in r.stderr)
    assert "took the run's lease over from pid 4242 on old-runtime" in r.stderr
    assert "(its holder is gone)" in r.stderr
    assert "epoch_001.pt" in _names(store)
    assert _claims(store) == []   # the dead one's removed at the take-over, its own at the end


def test_a_killed_trainer_of_this_machine_is_taken_over_at_once(drive_env, store, tiny_config,
                                                                tmp_path, monkeypatch):
    """A cell stopped hard (SIGKILL, a crashed kernel) and run again on the same machine:
    its process is gone, so its claim is no one's at once (no wait)."""
    path = tiny_config(**{"drive.logs": LOGS, "train.epochs": LONG, "train.keep_local": 2})
    old, err = _spawn(path, tmp_path, "old", "--set", SHORT)   # (its claim read once dead)
    _until(lambda: _claims(store), old)
    old.kill()
    old.wait(timeout=60)
    path = tiny_config(**{"drive.logs": LOGS, "train.epochs": 1, "train.freeze_epochs": 0,
                          "drive.lease_minutes": 1.0})   # (a wait would be minutes: none)
    # (No rival lives to write a claim meanwhile: the settle wait, 2 s here, bounds nothing.)
    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    r = CliRunner().invoke(cli, ["train", "-c", path])
    assert r.exit_code == 0, (r.output, r.exception)
    assert "is held by" not in r.stderr
    assert f"took the run's lease over from pid {old.pid} on " in r.stderr
    assert _claims(store) == []


def test_a_second_live_trainer_is_refused(drive_env, store, tiny_config, tmp_path):
    path = tiny_config(**{"drive.logs": LOGS, "train.epochs": LONG, "train.keep_local": 2})
    first, err = _spawn(path, tmp_path, "first", "--set", SHORT)   # (the second's LEASE reads it)
    try:
        _until(lambda: _claims(store), first)
        r = CliRunner().invoke(cli, ["train", "-c", path, "--set", LEASE, "--set",
                                     f"train.out_dir={tmp_path / 'second'}"])
        assert r.exit_code == 1, (r.output, r.exception)
        line = r.stderr.strip().splitlines()[-1]
        assert line.startswith(
            f"Error: drive.logs {LOGS} is the folder of a run another trainer still trains: "
            f"pid {first.pid} on "), line
        assert line.endswith(
            " ago); two trainers of one run overwrite each other's checkpoints there. Stop "
            "that one, or wait 9 s after it stopped renewing and start again, or start this "
            "one with --take-over (that one then stops at its next save); or give this run "
            "another drive.logs"), line
        assert first.poll() is None   # the first trains on
        assert not (tmp_path / "second" / "last.pt").exists()
    finally:
        _stop(first)


def test_take_over_stops_the_other_trainer_which_pushes_nothing_more(drive_env, store, tiny_config,
                                                                      tmp_path):
    path = tiny_config(**{"drive.logs": LOGS, "train.epochs": LONG, "train.keep_local": 2})
    # (Forked as the others: a fresh interpreter hid two lease races by its slow start, both
    # fixed: the holder judged gone after the settle wait (4c96eef5) and a claim renewed
    # between the taker's listing and its read (tests/test_lease38_renewed_read.py).)
    old, err = _spawn(path, tmp_path, "old")
    new = None
    try:
        _until(lambda: any(n.startswith("epoch_") and n.endswith(".json")
                           for n in _names(store)), old)   # a checkpoint verified there
        new, new_err = _spawn(path, tmp_path, "new", "--take-over")
        rc = old.wait(timeout=120)
        _until(lambda: "Drive: 0 s ago" in open(new_err).read(), new)   # the new one pushes
    finally:
        for p in (old, new):
            if p is not None:
                _stop(p)
    said = open(err).read()
    assert rc == 1, said
    taken = f"pid {new.pid} on "
    warned = [l for l in said.splitlines() if "WARNING trainer.lease: " in l]
    assert len(warned) == 1 and warned[0].split("WARNING trainer.lease: ")[1].startswith(taken)
    assert warned[0].endswith(f" ago): this trainer pushes nothing more there, its checkpoints "
                              f"stay in {tmp_path / 'old'} only"), warned
    line = said.strip().splitlines()[-1]
    stop = line.split(": ")[2].split(" is saved")[0]
    assert line.startswith("Error: stopped by the take-over of the run's lease at epoch "), line
    assert f" is saved in {tmp_path / 'old'} only: pid {new.pid} on " in line, line
    assert line.endswith(
        f" ago), and this trainer pushes nothing more there (it would replace that one's "
        f"checkpoints); that one goes on from Drive. To go on with this one instead, stop that "
        f"one, then start this one again with --take-over (--resume auto continues from "
        f"{stop})"), line
    assert "drivestage push" not in said and "could not finish" not in said
    assert "waiting for" not in said
    assert "took the run's lease over from pid " in open(new_err).read()
    assert "(--take-over)" in open(new_err).read()
    # What the old trainer saved after the take-over stayed here: its last save (the stop's)
    # is not on Drive, but where the new one wrote that name too.
    assert (tmp_path / "old" / stop).is_file()
    assert stop not in _names(store) or (tmp_path / "new" / stop).exists()
    assert _claims(store) == []


def test_two_trainers_started_at_once_one_is_refused(drive_env, emulator, store, tiny_config,
                                                     tmp_path):
    """Both write a claim of one generation, wait, list; the claim Drive made first holds (the
    run folder's arbiter agrees: lease47), the other trainer removes its own and is refused.
    At once: each one's claim is held by the emulator until both are sent (neither's watch
    saw the other's; started apart, the second was refused by its watch, and this test
    passed with the settle's decision and the arbiter both removed: fence49)."""
    path = tiny_config(**{"drive.logs": LOGS, "train.epochs": LONG, "train.keep_local": 2})
    emulator.faults.latency(60, method="POST", path="^/upload/", times=2)   # (the claims)
    a, a_err = _spawn(path, tmp_path, "a")
    b, b_err = _spawn(path, tmp_path, "b")
    try:
        assert emulator.faults.wait_latencies(lambda waiting: waiting == 2, 120)[0]
        emulator.faults.hurry()
        loser = _until(lambda: next((p for p in (a, b) if p.poll() is not None), None),
                       limit=180)
        winner = b if loser is a else a
        assert loser.returncode == 1
        said = open(a_err if loser is a else b_err).read().strip().splitlines()[-1]
        assert said.startswith(f"Error: drive.logs {LOGS} is the folder of a run another "
                               f"trainer still trains: pid {winner.pid} on "), said
        assert winner.poll() is None
        _until(lambda: len(_claims(store)) == 1, winner)
    finally:
        for p in (a, b):
            _stop(p)
