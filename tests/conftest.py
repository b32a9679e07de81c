"""Shared fixtures: a real emulator over HTTP on 127.0.0.1 and environments pointing at it."""
from __future__ import annotations

import os
import signal

import pytest

# A suite started in the background by a shell without job control (`(make test &)`, some CI
# runners) inherits SIGINT ignored, which Python then leaves ignored, and so would every
# process a test starts: each test that presses Ctrl-C for real (a SIGINT) failed. The
# tests' own processes get Python's usual handler back (a handler, unlike SIG_IGN, is not
# inherited across exec: children start with the default again).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _hangup_ignored(signum, frame) -> None:
    """The suite's own SIGHUP while it runs under ``nohup``: ignored, as nohup asked."""


# A suite started under ``nohup`` (a long run on a shared machine, a CI step run so) inherits
# SIGHUP ignored, and so did every process a test starts: a mirror then takes itself for one
# under nohup and runs on after the hang-up a test sends it (5 tests failed so, flakes33).
# A handler of the suite's own keeps the suite alive through a hang-up as nohup meant, and
# the processes its tests start get the default again (a handler is not inherited by exec).
if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
    signal.signal(signal.SIGHUP, _hangup_ignored)

# `make test` runs the suite in one worker process per core, and one more (pytest-xdist,
# `-n auto`): a fifth of a worker's time is spent waiting (on the processes a test starts, on
# the emulator, on a download's pace), and the extra worker fills it (2 cores: 6:22 ->
# 5:32-6:06 here).
# Each worker, and every process a test starts, then gets one compute thread: two workers
# with two OpenMP threads each on two cores made torch's threads wait on each other (a 12 s
# test took 290 s).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = "1"

_SPAWNS = None   # tests/_sig_ign.Spawns, made at the first test


@pytest.fixture(autouse=True)
def _signal_dispositions_kept(request):
    """Each test leaves SIGINT, SIGTERM and SIGHUP as it found them, as Python and the kernel
    hold them, and starts no process while it has SIGHUP or SIGTERM ignored: one that ended
    with a signal ignored in-process (drivestage's stop ignores the signals as a program
    ends) gave every process the worker started afterwards (the fork server, and so every
    CLI child) that signal ignored: a pull under a SIGHUP ignored takes itself for one under
    nohup. Such a test fails, naming what it changed or started (the dispositions are put
    back first, for the tests after it)."""
    global _SPAWNS
    from _sig_ign import WATCHED, Spawns, ignored

    if _SPAWNS is None:
        _SPAWNS = Spawns()
    before = {s: signal.getsignal(s) for s in WATCHED}
    kernel = ignored()
    _SPAWNS.arm()
    yield
    started, _SPAWNS.found = _SPAWNS.found, []
    changed = [f"{WATCHED[s]}'s handler {handler!r} -> {signal.getsignal(s)!r}"
               for s, handler in before.items()
               if signal.getsignal(s) is not handler and handler is not None]
    if ignored() != kernel:
        changed.append(f"ignored by the kernel: {kernel} -> {ignored()}")
    for s, handler in before.items():
        if handler is not None:
            signal.signal(s, handler)   # (sets the kernel's disposition again too)
    if changed or started:
        pytest.fail(f"{request.node.nodeid} left signals changed or started a process "
                    "under an ignored one:\n  " + "\n  ".join(changed + started),
                    pytrace=False)


# A trainer with drive.logs waits 2 s after writing its lease claim for a rival's claim to be
# listed (trainer/lease.py: Drive's listings may lag a create); the emulator lists a create
# at once, so the wait only slowed every such test (+5 min in all). The tests of the race
# set their own.
os.environ.setdefault("TRAINER_LEASE_SETTLE", "0")


# The tests' temporary folders (pytest's basetemp) on a RAM file system where one with room
# is there (/dev/shm): they create, fsync and remove hundreds of thousands of small files,
# and on this VM's disk (ext4 mounted with `discard`) that kernel work and waiting cost more
# than the tests' own (test_interrupt_commands.py: 146 s on the disk, 78 s on a tmpfs).
# What the tests check does not depend on the file system; tests that need a small or a
# FUSE-like one mount their own. A passing test's folder is removed at its end
# (tmp_path_retention_policy in pyproject.toml), so RAM holds the running tests' files only.
# DRIVESTAGE_TEST_TMPFS=0 (or --basetemp) keeps them on the disk.
_RAM = "/dev/shm"
_RAM_PREFIX = "drivestage-tests-"
#: Free bytes the RAM file system and the machine must both have, or the disk is used.
_RAM_NEEDED = 6 << 30


def _ram_basetemp() -> "str | None":
    """A fresh folder on :data:`_RAM` for this run (the folders of runs whose process is
    gone are removed first), or None where there is no such file system with room."""
    import shutil
    import tempfile

    if os.environ.get("DRIVESTAGE_TEST_TMPFS") == "0" or not os.path.ismount(_RAM):
        return None
    try:
        with open("/proc/self/mounts", encoding="utf-8") as fh:
            kinds = {f[1]: f[2] for f in (line.split() for line in fh) if len(f) > 2}
        with open("/proc/meminfo", encoding="utf-8") as fh:
            mem = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh
                   if line.split()[1:2] and line.split()[1].isdigit()}
        vfs = os.statvfs(_RAM)
    except OSError:
        return None
    if kinds.get(_RAM) != "tmpfs" or vfs.f_bavail * vfs.f_frsize < _RAM_NEEDED \
            or mem.get("MemAvailable", 0) < _RAM_NEEDED:
        return None
    for name in os.listdir(_RAM):  # a killed run's folder (its files stay in RAM)
        pid = name[len(_RAM_PREFIX):].split("-")[0]
        if name.startswith(_RAM_PREFIX) and pid.isdigit() \
                and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(os.path.join(_RAM, name), ignore_errors=True)
    try:
        return tempfile.mkdtemp(prefix=f"{_RAM_PREFIX}{os.getpid()}-", dir=_RAM)
    except OSError:
        return None


@pytest.hookimpl(tryfirst=True)  # before pytest's own tmp_path factory reads the option
def pytest_configure(config):
    from _sigint_watch import SigintWatch   # (a Ctrl-C outside its test names its sender)

    if not config.pluginmanager.has_plugin("sigint-watch"):
        config.pluginmanager.register(SigintWatch(), "sigint-watch")
    if not os.environ.get("PYTEST_XDIST_WORKER") and \
            isinstance(getattr(config.option, "numprocesses", None), int) and \
            config.option.numprocesses > 1:
        _rewrite_test_modules_once(config)
    if os.environ.get("PYTEST_XDIST_WORKER") or config.option.basetemp:
        return  # a worker gets its folder below the controller's (pytest-xdist)
    base = _ram_basetemp()
    if base is not None:
        config.option.basetemp = os.path.join(base, "pytest")
        config._drivestage_ram_base = base


def _rewrite_test_modules_once(config) -> None:
    """The xdist controller, before its workers start: the test modules' assertion rewrites
    cached once (tests/_rewrite_ahead.py), not by each worker (on a fresh clone, 2 cores:
    40 CPU-s less before the first test). A pytest whose internals differ from those used
    there leaves it to the workers, as before."""
    from _rewrite_ahead import rewrite_ahead

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        rewrite_ahead(config, cores)
    except (AttributeError, TypeError, KeyError):
        pass


def pytest_unconfigure(config):
    """The RAM folder goes after a run in which every test passed (kept for a look
    otherwise, until the next run removes it)."""
    import shutil

    base = getattr(config, "_drivestage_ram_base", None)
    if base is not None and getattr(config, "_drivestage_all_passed", False):
        shutil.rmtree(base, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    session.config._drivestage_all_passed = exitstatus == 0


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: the cores this process may run on, plus one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores + 1


@pytest.fixture
def emulator_factory(tmp_path):
    """``emulator_factory(**options)`` -> a started Drive API emulator on a random loopback
    port (its own data folder unless ``data_dir`` is given; ``quota_bytes``, ``token``...),
    stopped after the test."""
    from drivestage.emulator import Emulator

    started = []

    def make(**options):
        options.setdefault("data_dir", str(tmp_path / f"drive-data-{len(started)}"))
        emu = Emulator(**options).start()
        started.append(emu)
        return emu

    yield make
    for emu in reversed(started):
        emu.stop()


@pytest.fixture
def emulator(emulator_factory):
    """A fresh Drive API emulator on a random loopback port, stopped after the test."""
    return emulator_factory()


@pytest.fixture
def proxy(emulator):
    """A mutating proxy (tests/_proxy.py) in front of the emulator: a lying server's answers
    are made by its rules. Tests point the commands at ``proxy.url``."""
    from _proxy import Proxy

    with Proxy(emulator.url) as p:
        yield p


@pytest.fixture
def through(proxy, monkeypatch, local_state):
    """The commands (library and CLI in this process) talk to the emulator through ``proxy``,
    their retries' waits cut short."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.001")
    return proxy


@pytest.fixture
def penv(proxy, local_state, monkeypatch):
    """The commands (library and CLI in this process) talk to the emulator through ``proxy``,
    their retries' waits ``local_state``'s (a test that wants them shorter, without jitter,
    asks for ``fast_retries`` after this; ``through`` cuts them to a millisecond)."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")


@pytest.fixture
def drive_env(emulator, monkeypatch):
    """Point drivestage (library and CLI in this process) at the emulator."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    return {"DRIVESTAGE_API_ROOT": emulator.url, "DRIVESTAGE_TOKEN": "test-token"}


# --- trainer: a tiny synthetic VOC dataset and a config that trains on it in seconds ---------

@pytest.fixture(scope="session")
def synth_voc(tmp_path_factory):
    """A 24-image, 3-class synthetic VOCdevkit (+ annotation lines and the recipe's zip), made once."""
    from trainer.data.synth import make_synthetic_voc

    out = tmp_path_factory.mktemp("synth")
    return make_synthetic_voc(out / "data", images=24, classes=3, seed=0, image_size=(64, 120),
                              zip_path=out / "synth.zip")


@pytest.fixture
def tiny_config(synth_voc, tmp_path):
    """``tiny_config(**{"train.epochs": 3, ...})`` -> path of a YAML config for a seconds-long run."""
    import yaml

    def make(**overrides):
        cfg = {
            "data": {"classes": str(synth_voc.classes_file), "train": str(synth_voc.train_lines_file),
                     "val": str(synth_voc.val_lines_file), "workers": 0, "root": str(tmp_path / "data")},
            "model": {"input_size": 64, "width": 0.25},
            "train": {"epochs": 2, "freeze_epochs": 1, "batch_size": 8, "freeze_batch_size": 8,
                      "save_period": 1, "eval_period": 1, "out_dir": str(tmp_path / "logs"),
                      "deterministic": True, "device": "cpu", "mosaic": True, "mixup": True},
        }
        for key, value in overrides.items():
            section, name = key.split(".")
            cfg.setdefault(section, {})[name] = value
        path = tmp_path / f"tiny{len(list(tmp_path.glob('tiny*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return str(path)

    return make


@pytest.fixture
def one_torch_thread():
    """Train on one intra-op thread: on a shared 2-core machine this is 5-10x faster (no OpenMP
    spin-waiting against other processes) and the arithmetic is the same in every process."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def local_state(tmp_path, monkeypatch):
    """drivestage's local state (md5 cache, upload sessions) in tmp_path; retries that
    back off in milliseconds instead of seconds."""
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.05")
    return tmp_path


@pytest.fixture
def env(local_state):
    """The environment drivestage runs in; test modules override it to add settings."""
    return local_state


@pytest.fixture
def store(emulator, env):
    """A DriveStore on the emulator, in ``env`` (a module may override either fixture)."""
    from drivestage.drive import connect

    return connect(api_root=emulator.url, token="test-token")


@pytest.fixture
def fast_retries(monkeypatch):
    """Retry backoffs of a millisecond and no jitter (the schedule itself is unit-tested)."""
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.001")
    monkeypatch.setenv("DRIVESTAGE_RETRY_JITTER", "0")


@pytest.fixture(autouse=True)
def _past_the_tick_of_each_write(monkeypatch):
    """A test writes a file and pulls it in the same few ms: its hash would be "racy" (see
    drivestage.state.settled) and the stamp would record no identity, which costs the
    next pull a hash. A file of a user's is written long before; tests that mean the tick
    set RACY_NS themselves (tests/test_attack23_stage.py)."""
    import drivestage.state as state

    monkeypatch.setattr(state, "RACY_NS", 0)


@pytest.fixture(autouse=True)
def _drive_clock_unheard(monkeypatch):
    """Drive's clock as no answer has said it yet: a new offset is taken once two answers in
    a row say it (drivestage.drive.server_clock), so one test's skewed emulator would
    otherwise outlive it in the worker for a later test's first answer."""
    from drivestage.drive import server_clock

    for name, value in (("_behind", None), ("_pending_reading", None), ("_dated", True),
                        ("_stamped", None), ("_stamped_made", None),
                        ("_wrote", None)):
        monkeypatch.setattr(server_clock, name, value)


@pytest.fixture(autouse=True)
def _loggers_as_they_were():
    """A command run in this process points drivestage's and trainer's loggers at its own
    stream and stops them propagating: put them back after each test, so that a later test's
    ``caplog`` sees their records."""
    import logging

    saved = [(log, log.handlers[:], log.propagate, log.level)
             for log in (logging.getLogger("drivestage"), logging.getLogger("trainer"))]
    yield
    for log, handlers, propagate, level in saved:
        log.handlers[:] = handlers
        log.propagate = propagate
        log.setLevel(level)


# --- after each test: nothing of ours left running, nothing global left changed --------------
# A test that leaves a thread, a process or an open file behind, or changes what every test
# shares (the environment, the current folder, a signal handler, a trace function), fails
# another test later, in whichever worker and order xdist picks (CI stop 33: a hash thread an
# interrupted upload left waiting failed test_attack_today much later). Each test is checked
# as it ends and fails itself, naming what it left. Cheap: a snapshot before, a comparison
# after; waiting (at most _LEFT_WAIT s) only for what is still there.

import gc
import logging
import re
import socket
import sys
import threading
import time

#: Threads our code names (grep for BackgroundThread/Serial/each/Thread names in drivestage/
#: and trainer/): started by a test and still alive after it, they are its leak. Not an
#: emulator's "drive-emulator-request" threads: a module's emulator keeps the connections
#: a client keeps open from one test to the next (its stop() waits for them).
_OUR_THREADS = ("drivestage-", "trainer-", "image-cache")
_OUR_THREAD_NAMES = ("drive-emulator",)
#: Seconds a test's leftovers get, in all, to end by themselves before it fails.
_LEFT_WAIT = 5.0
#: Signals whose handlers tests and our commands set (SIGALRM is pytest-timeout's; SIGCHLD,
#: torch's, set once by the first DataLoader with worker processes).
_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2",
                                              "SIGPIPE") if hasattr(signal, n))
#: The environment variables our code and tests read or set. Not all of them: a library sets
#: some as it is first imported (cv2: LD_LIBRARY_PATH), whichever test that happens in.
_CHECKED_VARS = re.compile(r"(DRIVESTAGE_|TRAINER_|GOOGLE_|GCE_|CLOUDSDK_|COLAB_|XDG_|"
                           r"(HOME|TMPDIR|PATH|PYTHONPATH|RANK|LOCAL_RANK|WORLD_SIZE|MASTER_ADDR|"
                           r"MASTER_PORT|COLUMNS|LINES|KILL_WITH|[A-Z]+_NUM_THREADS)\Z)")
#: Every process this worker starts inherits it, so that one orphaned by a kill (its parent
#: gone, it is init's child) is still found: the marker and this process's id.
_OWNER = f"_DRIVESTAGE_LEAKCHECK_OWNER={os.getpid()}"
os.environ["_DRIVESTAGE_LEAKCHECK_OWNER"] = str(os.getpid())
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_spawned = False  # set by the audit hook when this process starts a process


def _note_spawn(event: str, args: object) -> None:
    global _spawned
    if event in ("subprocess.Popen", "os.fork", "os.posix_spawn", "os.spawn", "os.system",
                 "os.forkpty"):
        _spawned = True
    # multiprocessing's fork server starts a process when asked over a UNIX socket (and is
    # itself started without an audit event): tests/_trainer_proc.py's trainers
    elif event == "socket.connect" and getattr(args[0], "family", None) == socket.AF_UNIX:
        _spawned = True


if sys.platform.startswith("linux"):
    sys.addaudithook(_note_spawn)


def _ours(name: str) -> bool:
    return name.startswith(_OUR_THREADS) or name in _OUR_THREAD_NAMES


def _left_behind(thread: threading.Thread) -> bool:
    """Whether ``thread``, started during a test, is its leak once it ended: one of ours, or
    any thread not a daemon (a test's own helper still waiting, which also keeps the worker
    from exiting). A whole suite run left none (flakes33); daemon threads of libraries (a
    proxy's connection handlers until their client closes) may outlive their test."""
    return _ours(thread.name) or not thread.daemon


def _fds() -> set[tuple[str, str]]:
    """This process's open descriptors: (number, what it is open on)."""
    out = set()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:  # not Linux
        return out
    for fd in names:
        try:
            out.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:
            continue  # closed meanwhile (listdir's own descriptor, too)
    return out


def _open_under(fds: set[tuple[str, str]], folder: str) -> list[str]:
    """Of the descriptors ``fds``, what those open on a file under ``folder`` name."""
    return sorted(target for _, target in fds if target.startswith(folder + os.sep))


def _boot_ticks() -> int:
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _TICKS)


#: What the command line of a helper process that lives as long as this one says.
_HELPERS = ("resource_tracker", "forkserver", os.sep + "_forkcli.py ")


def _processes_since(ticks: int) -> dict[int, str]:
    """Processes started at ``ticks`` or later (clock ticks since boot), running (not
    zombies), that inherited this worker's marker: {pid: command line}."""
    found = {}
    marker = _OWNER.encode() + b"\0"
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2:].split()
            if fields[0] in (b"Z", b"X") or int(fields[19]) < ticks:
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker not in f.read():
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile, or another user's
        # multiprocessing's helpers (its fork server, its resource tracker) and the CLI fork
        # server (tests/_forkcli.py, started at first use: whichever test that is) live as
        # long as this process, by design: those this process started itself. What a fork
        # server forks (a trainer, a drivestage run) keeps its command line: a test's own.
        if (any(helper in cmd for helper in _HELPERS) and int(fields[1]) == os.getpid()):
            continue
        found[int(entry)] = cmd
    return found


def _root_handlers() -> list[logging.Handler]:
    # pytest's own capture handlers come and go with each phase of a test
    return [h for h in logging.getLogger().handlers if not type(h).__module__.startswith("_pytest")]


def _shared_state() -> dict[str, object]:
    """What every test in a worker shares, and none may leave changed."""
    return {
        "current folder": os.getcwd(),
        "environment": {k: v for k, v in os.environ.items() if _CHECKED_VARS.match(k)},
        "sys.path": list(sys.path),
        "trace function": sys.gettrace(),
        "thread trace function": threading.gettrace(),
        "profile function": sys.getprofile(),
        "signal handlers": {signal.Signals(s).name: signal.getsignal(s) for s in _SIGNALS},
        # A signal left blocked (test_worker_crash31 blocks SIGCHLD for a while) never reaches
        # this worker's later tests, nor any process they start (the mask is inherited).
        "blocked signals": sorted(getattr(s, "name", str(s))
                                  for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
        if hasattr(signal, "pthread_sigmask") else [],
        "sys.excepthook": sys.excepthook,
        "threading.excepthook": threading.excepthook,
        "socket default timeout": socket.getdefaulttimeout(),
        "root logger handlers": _root_handlers(),
        "root logger level": logging.getLogger().level,
        "logging.disable": logging.root.manager.disable,
        "stdin/stdout/stderr": (sys.stdin, sys.stdout, sys.stderr),
        **_our_state(),
    }


def _our_state() -> dict[str, object]:
    """drivestage's own process-wide state that no finished operation leaves set: a push's
    place lock held (every later push into that place in a notebook waits for it), a folder
    pull's listings still in force (a later pull would trust them), a server remembered as
    one without generateIds."""
    out: dict[str, object] = {}
    locks = sys.modules.get("drivestage.locks")
    if locks is not None:
        out["push place locks held"] = sorted(d for d, lock in list(locks._THREAD_LOCKS.items())
                                              if lock.locked())
    partials = sys.modules.get("drivestage.partials")
    if partials is not None:
        out["folders of partials.listed_once"] = sorted(partials._listed)
    ids = sys.modules.get("drivestage.drive.ids")
    if ids is not None:
        # Kept by URL for the process's life: a later test's emulator or proxy on the same
        # port (a random one, reused) made its creates without ids (flakes33).
        out["servers taken for ones without generateIds (drive.ids._WITHOUT)"] = \
            sorted(ids._WITHOUT)
    return out


def _changes(before: dict[str, object], after: dict[str, object]) -> list[str]:
    out = []
    for what, now in after.items():
        was = before.get(what, [])  # (a module of ours imported by the test)
        if now == was:
            continue
        if isinstance(was, dict) and isinstance(now, dict):
            keys = sorted(k for k in set(was) | set(now) if was.get(k, "<unset>") != now.get(k, "<unset>"))
            detail = ", ".join(f"{k}: {was.get(k, '<unset>')!r} -> {now.get(k, '<unset>')!r}" for k in keys)
            out.append(f"{what} changed ({detail})")
        else:
            out.append(f"{what} changed ({was!r} -> {now!r})")
    return out


@pytest.fixture(autouse=True)
def _checked_for_leftovers(request, tmp_path_factory):
    """Fail the test that leaves one of ours running or global state changed (see above).
    Torn down after the test's other function-scope fixtures (an autouse fixture of this
    conftest is set up first), so an emulator or a monkeypatch a test uses is already undone."""
    global _spawned
    threads = set(threading.enumerate())
    fds = _fds()
    state = _shared_state()
    ticks = _boot_ticks() - 1
    _spawned = False
    yield
    spawned, _spawned = _spawned, False
    problems = []
    deadline = time.monotonic() + _LEFT_WAIT
    left = [t for t in threading.enumerate() if t not in threads and _left_behind(t)]
    for t in left:
        t.join(max(0.0, deadline - time.monotonic()))
    left = [t for t in left if t.is_alive()]
    if left:
        problems.append("threads left running: " + ", ".join(sorted(t.name for t in left)))
    procs = _processes_since(ticks) if spawned else {}
    while procs and time.monotonic() < deadline:
        time.sleep(0.05)
        procs = _processes_since(ticks)
    for pid, cmd in procs.items():
        problems.append(f"process left running (killed now): {pid} {cmd[:300]}")
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    base = str(tmp_path_factory.getbasetemp())
    opened = _open_under(_fds() - fds, base)
    if opened:
        gc.collect()  # a file object in a reference cycle is closed by the collector
        opened = _open_under(_fds() - fds, base)
    if opened:
        problems.append("files left open: " + ", ".join(opened))
    problems += _changes(state, _shared_state())
    if problems:
        pytest.fail(f"{request.node.nodeid} left behind:\n  " + "\n  ".join(problems), pytrace=False)


def pytest_collection_finish(session):
    """Freeze what collection left alive (torch's 300,000 objects, every test module's): it
    lives as long as the worker, and each full collection of the cyclic collector walked it
    again (0.4 s each, about one in ten tests; gc.collect() calls of the tests too). Garbage
    first, so none of it is kept."""
    global _frozen
    gc.collect()
    gc.freeze()
    _frozen = True


#: Whether collection's objects were frozen (:func:`pytest_collection_finish`). Not frozen
#: again after a test that unfreezes (tests of drivestage.heap, the sweeps that freeze for
#: their own collections): done at each teardown, a collection and a freeze cost every later
#: test of the worker 0.3 s (the count read 0 after each), the suite 40 % more CPU.
_frozen = False


def pytest_collection_modifyitems(config, items):
    """``DRIVESTAGE_TEST_REVERSE=1``: run the tests in the reverse order, to find a test that
    passes only after (or before) another."""
    if os.environ.get("DRIVESTAGE_TEST_REVERSE") == "1":
        items.reverse()
