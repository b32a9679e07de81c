"""attackstream40: standard output that is a file on a disk that fills half-way through a
command's output, and failures whose messages nobody reads, through the real command lines.

``drivestage ls --json drive:x > listing.json`` whose listing is larger than the room left:
the file was cut at what the disk took (8 KiB here) and the command said nothing, exit 0. A
text stream drops what its binary buffer did not take, and a write larger than the buffer
that fills the disk is a short count, not an error (CPython); attackcli40's one-line error
for a full disk (``stdout_sink``) never saw it. A script that checks the exit code then read
a JSON file cut in the middle.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from _forkcli import PIPE, cli_server
from _tmpfs import small_disk  # noqa: F401 (fixture)
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


@pytest.fixture
def env(emulator, drive_env, local_state):
    return dict(os.environ)


def test_ls_json_onto_a_disk_that_fills_half_way_says_so_and_exits_1(
        emulator, env, small_disk):
    for i in range(300):
        emulator.add_file(f"data/file-{i:04d}-with-a-long-enough-name.txt", b"x")
    out = small_disk(8192) / "listing.json"
    with open(out, "w") as f:
        child = cli_server().popen(["ls", "--json", "drive:data"], env=env, stdout=f,
                                   stderr=PIPE, text=True)
        _, err = child.communicate(timeout=120)
    assert (child.returncode, err) == (1, (
        f"Error: cannot write to standard output ({out}): No space left on device; make "
        "room where it goes, or send it elsewhere\n"))
    assert os.path.getsize(out) == 8192   # (what the disk took: the rest is said lost)


def _reader_gone() -> int:
    """The writing end of a pipe whose reader has left (``… 2>&1 | head -1``, head ended)."""
    r, w = os.pipe()
    os.close(r)
    return w


@pytest.mark.parametrize("main, args, code", [
    ("trainer", ["train", "-c", "{config}"], 1),          # the data is not there
    ("drivestage", ["pull", "drive:not-there.zip", "{dest}"], 1),
    ("drivestage", ["push", "{dest}", ""], 2),            # a usage error
])
def test_a_failure_whose_messages_nobody_reads_keeps_its_exit_code(
        emulator, env, tmp_path, main, args, code):
    """``trainer train -c CFG 2>&1 | head -1`` (head gone before the first line): its Error
    line is dropped (attackcli40: what stderr's reader cannot take), so the exit code is all
    that says the command failed. It still does."""
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  train: {tmp_path}/none.txt\n  val: {tmp_path}/none.txt\n"
                      f"  classes: [a]\n  root: {tmp_path}/data\ntrain:\n  epochs: 1\n"
                      f"  freeze_epochs: 0\n  device: cpu\n  out_dir: {tmp_path}/logs\n")
    w = _reader_gone()
    try:
        done = subprocess.run([sys.executable, "-m", main,
                               *[a.format(config=config, dest=tmp_path / "d") for a in args]],
                              stdout=w, stderr=w, env=env, timeout=120)
    finally:
        os.close(w)
    assert done.returncode == code
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").rglob("*.pt"))


def test_a_notebooks_stream_is_written_as_it_asks():
    """Where standard output is no text layer over bytes (a notebook's stream, whatever its
    ``buffer`` holds), the text goes to its own ``write``, every character counted."""
    import io

    from drivestage.stdout_sink import Sink

    class Notebook(io.TextIOBase):
        def __init__(self):
            self.got: list[str] = []
            self.buffer = io.StringIO()   # (not bytes: never written to)

        def write(self, text):
            self.got.append(text)
            return None

    stream = Notebook()
    assert Sink(stream).write("listing\n") == 8
    assert stream.got == ["listing\n"] and stream.buffer.getvalue() == ""


def test_output_to_a_descriptor_opened_for_reading_is_not_told_to_make_room(tmp_path):
    """``trainer synth-data OUT 1< file`` (a typo for ``1>``): EBADF, said with the advice
    to make room on a disk, which nothing lacks."""
    with open(os.devnull, "rb") as read_only:
        done = subprocess.run([sys.executable, "-m", "trainer", "synth-data",
                               str(tmp_path / "synth"), "--images", "2"],
                              stdout=read_only, stderr=subprocess.PIPE, text=True, timeout=120)
    assert (done.returncode, done.stderr.splitlines()[-1]) == (1, (
        "Error: cannot write to standard output (/dev/null): Bad file descriptor; it is not "
        "open for writing (1< where 1> was meant?); send it elsewhere"))


@pytest.mark.slow
def test_a_run_whose_summarys_reader_went_away_says_0(tiny_config, tmp_path):
    """``trainer train -c CFG | head -1`` with head gone before the end (or a ``tee`` that
    ended): the run trained and saved to its end, and said 1, with no word, when its
    summary met the broken pipe. The summary is dropped, as stderr's lines are; exit 0."""
    config = tiny_config(**{"train.epochs": 1, "train.freeze_epochs": 0})
    w = _reader_gone()
    try:
        done = subprocess.run([sys.executable, "-m", "trainer", "train", "-c", config],
                              stdout=w, stderr=subprocess.PIPE, text=True, timeout=300,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        os.close(w)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Exception ignored" not in done.stderr and "Error" not in done.stderr
    assert sorted(p.name for p in (tmp_path / "logs").glob("*.pt")) == [
        "best.pt", "epoch_001.pt", "last.pt"]


def test_a_non_blocking_stderr_that_is_full_for_now_loses_no_line():
    """Standard error set non-blocking (a CI runner's or a shell's doing, on the descriptor
    it shares) answers EAGAIN while its reader is slow: attackcli40 took that for a reader
    gone and sent every later line to the null device, the ``Error:`` line at the end too.
    Here the pipe is full before the first line; every line arrives once it is read."""
    import fcntl
    import threading

    from drivestage.stderr_tail import Tail

    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
    filled = 0
    while True:   # (full: the reader has not read yet)
        try:
            filled += os.write(w, b"." * 4096)
        except BlockingIOError:
            break
    lines = [f"status line {i:05d}\n" for i in range(3000)] + ["Error: the last line\n"]
    stream = open(w, "w", buffering=1, encoding="utf-8")
    tail = Tail(stream)

    def say_all() -> None:
        for line in lines:
            tail.write(line)
        tail.flush()
        stream.close()

    writer = threading.Thread(target=say_all)
    writer.start()
    # The reader comes late: before, the writer was through long before (its lines past
    # the first EAGAIN sent to the null device); now it waits for the reader, however long
    # this takes. (Only how the old code failed depends on the time given.)
    writer.join(1.0)
    got = bytearray()
    with open(r, "rb", buffering=0) as reader:
        while chunk := reader.read(1 << 16):
            got += chunk
    writer.join(60)
    assert not writer.is_alive()
    assert got[:filled] == b"." * filled
    assert got[filled:].decode() == "".join(lines)
