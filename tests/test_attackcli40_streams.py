"""Standard streams a user closes or whose reader goes away (attackcli40), through the real
command lines.

- Started with standard error closed (``drivestage push SRC DEST 2>&-``, a launcher that
  closes it), Python's ``sys.stderr`` is None: every command died at its first status line,
  exit 1 and no word: a push sent nothing, a pull staged nothing, a mirror ended before its
  first push, ``trainer synth-data`` said 1 for a dataset it wrote, and a usage error's 2
  was 1.
- Once standard error's reader is gone (``drivestage mirror ... 2>&1 | head``, a ``tee``
  that ended), the next status line raised ``BrokenPipeError``: a mirror stopped with
  SIGTERM skipped its final push at ``stopping: pushing once more`` (exit 1, the newest
  files left off Drive), and a training run died at its progress bar's first redraw with
  nothing saved.
"""
from __future__ import annotations

import hashlib
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from _forkcli import DEVNULL, PIPE, cli_server
from _mirror_signal import live_files
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)

#: ``python -c SCRIPT ARGS`` as a process started with these descriptors closed runs
#: drivestage (``{main}``: which console script): Python then has None for their streams.
#: It ends itself with the exit code an interpreter would give (1 for an uncaught error):
#: with no stderr (closed, or a full disk), the fork server's child cannot say a
#: traceback, and its end was 0. (No stream named: only that ending.)
CLOSED = ("import os, sys\n"
          "for fd, name in {closed}:\n"
          "    os.close(fd)\n"
          "    setattr(sys, name, None)\n"
          "    setattr(sys, '__%s__' % name, None)\n"
          "from {main} import main\n"
          "try:\n"
          "    main()\n"
          "    code = 0\n"
          "except SystemExit as exc:\n"
          "    code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)\n"
          "except BaseException:\n"
          "    code = 1\n"
          "os._exit(code)\n")


def _closed(*names: str, main: str = "drivestage.entry") -> str:
    fds = {"stdin": 0, "stdout": 1, "stderr": 2}
    return CLOSED.format(closed=[(fds[n], n) for n in names], main=main)


@pytest.fixture
def env(emulator, drive_env, local_state):
    return dict(os.environ)


def _md5s(folder) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()
            if p.is_file()}


def _src(tmp_path, n: int = 3):
    src = tmp_path / "logs"
    src.mkdir()
    for i in range(n):
        (src / f"f{i}.txt").write_text(f"file {i}\n")
    return src


def test_push_with_stderr_closed_pushes(emulator, env, tmp_path):
    src = _src(tmp_path)
    done = cli_server().run(["push", str(src), "drive:runs"], env=env, timeout=60,
                            script=_closed("stderr"))
    assert done.returncode == 0
    assert live_files(emulator) == _md5s(src)


def test_pull_with_every_stream_closed_pulls(emulator, env, tmp_path):
    src = _src(tmp_path)
    for name, md5 in _md5s(src).items():
        emulator.add_file(f"data/{name}", (src / name).read_bytes())
    done = cli_server().run(["pull", "drive:data", str(tmp_path / "out")], env=env,
                            timeout=60, script=_closed("stdin", "stdout", "stderr"))
    assert done.returncode == 0
    assert _md5s(tmp_path / "out" / "data") == _md5s(src)


@pytest.mark.parametrize("args, code", [
    (["push", "{src}", ""], 2),          # a usage error: 2, not 1
    (["ls", "drive:nothing-here"], 1),
])
def test_an_error_with_stderr_closed_keeps_its_exit_code(emulator, env, tmp_path, args, code):
    src = _src(tmp_path)
    done = cli_server().run([a.format(src=src) for a in args], env=env, timeout=60,
                            script=_closed("stderr"))
    assert done.returncode == code
    assert live_files(emulator) == {}


def test_trainer_with_stderr_closed_makes_its_dataset(tmp_path):
    out = tmp_path / "synth"
    done = cli_server().run(["synth-data", str(out), "--images", "2"], timeout=120,
                            script=_closed("stderr", main="trainer.entry"))
    assert done.returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["2007_train.txt", "2007_val.txt",
                                                     "VOCdevkit", "classes.txt"]


def _until(ready, proc, what: str, bound: float = 30) -> None:
    deadline = time.monotonic() + bound
    while not ready():
        assert proc.poll() is None, what
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_mirror_whose_stderr_reader_went_away_still_makes_its_final_push(emulator, env,
                                                                         tmp_path):
    """``drivestage mirror SRC DEST --every 3600 2>&1 | head -1``: the mirror's first line
    read, the reader gone, a file written, SIGTERM: the final push sends it, exit 0."""
    src = _src(tmp_path)
    proc = cli_server().popen(["mirror", str(src), "drive:runs", "--every", "3600"], env=env,
                              stdout=DEVNULL, stderr=PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("mirroring ")   # after the first push
        proc.stderr.close()   # (head -1 ends)
        (src / "late.txt").write_text("written after the reader went\n")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert live_files(emulator) == _md5s(src)


@pytest.mark.slow
def test_training_whose_stderr_reader_went_away_trains_to_its_end(tiny_config, tmp_path):
    """``trainer train -c CFG 2>&1 | head -1``: it trained on to the last epoch and saved
    it, where the bar's first redraw after the reader went killed the run (exit 1, nothing
    saved)."""
    from _trainer_proc import start_trainer

    config = tiny_config(**{"train.epochs": 1, "train.freeze_epochs": 0})
    # Its standard error a pipe (a FIFO: the child is forked with torch imported, its streams
    # opened by name, tests/_trainer_proc.py; a fresh interpreter's torch import was 2-3 s of
    # the test's 4). Opened here first, read and write (Linux: no wait for the other end),
    # so the child's open finds a reader; once closed here, the child's end has none.
    fifo = str(tmp_path / "stderr")
    os.mkfifo(fifo)
    reader = os.fdopen(os.open(fifo, os.O_RDWR), "rb", buffering=0)
    proc = start_trainer(["train", "-c", config], env={**os.environ, "OMP_NUM_THREADS": "1"},
                         stderr=fifo)
    try:
        assert select.select([reader], [], [], 120)[0], "the run wrote nothing on stderr"
        reader.readline()
        reader.close()
        assert proc.wait(300) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sorted(p.name for p in (tmp_path / "logs").glob("epoch_*.pt")) == ["epoch_001.pt"]


def _to_full(args: list[str], **popen) -> tuple[int, str]:
    """The exit code and stderr of ``drivestage ARGS > /dev/full``."""
    with open("/dev/full", "w") as full:
        child = cli_server().popen(args, stdout=full, stderr=PIPE, text=True, **popen)
        _, err = child.communicate(timeout=120)
    return child.returncode, err


FULL = ("Error: cannot write to standard output (/dev/full): No space left on device; make "
        "room where it goes, or send it elsewhere\n")


@pytest.mark.parametrize("args", [["ls", "drive:data"], ["ls", "--json", "drive:data"],
                                  ["pull", "drive:data", "{out}", "--json"]])
def test_output_to_a_full_disk_is_one_line(emulator, env, tmp_path, args):
    """``drivestage ls --json drive:x > listing.json`` on a full disk (``/dev/full`` here)
    ended in the ``OSError`` traceback of click's echo; a pull's files stay staged."""
    emulator.add_file("data/a.txt", b"a")
    code, err = _to_full([a.format(out=tmp_path / "out") for a in args], env=env)
    assert (code, err.splitlines()[-1] + "\n") == (1, FULL)
    assert "Traceback" not in err
    if args[0] == "pull":
        assert (tmp_path / "out" / "data" / "a.txt").read_bytes() == b"a"


def test_trainer_output_to_a_full_disk_is_one_line(tmp_path):
    out = tmp_path / "synth"
    code, err = _to_full(["synth-data", str(out), "--images", "2"],
                         script=_closed(main="trainer.entry"))
    assert (code, err.splitlines()[-1] + "\n") == (1, FULL)
    assert "Traceback" not in err
    assert (out / "classes.txt").is_file()


def test_mirror_whose_stderr_is_a_full_disk_pushes_and_stops_cleanly(emulator, env, tmp_path):
    """``drivestage mirror ... 2>> /var/log/mirror.log`` with that disk full (``/dev/full``
    here): its first status line raised ``OSError`` (ENOSPC) and the mirror ended, exit 1,
    before its final push; messages that cannot be written are dropped now, its pushes are
    made, and SIGTERM ends it with exit 0."""
    src = _src(tmp_path)
    with open("/dev/full", "w") as full:
        proc = cli_server().popen(["mirror", str(src), "drive:runs", "--every", "3600"],
                                  env=env, stdout=DEVNULL, stderr=full, script=_closed())
    try:
        _until(lambda: live_files(emulator) == _md5s(src), proc, "the first push")
        (src / "late.txt").write_text("written after the first push\n")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert live_files(emulator) == _md5s(src)


def test_push_whose_stderr_is_a_full_disk_says_0(emulator, env, tmp_path):
    src = _src(tmp_path)
    with open("/dev/full", "w") as full:
        proc = cli_server().popen(["push", str(src), "drive:runs"], env=env, stdout=DEVNULL,
                                  stderr=full, script=_closed())
    assert proc.wait(60) == 0
    assert live_files(emulator) == _md5s(src)
