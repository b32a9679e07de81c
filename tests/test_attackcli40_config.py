"""``trainer -c CONFIG`` given what is no plain file (attackcli40), in-process as trainer's
other CLI tests run.

- ``trainer train -c <(envsubst < cfg.yaml)`` (a pipe: process substitution, a FIFO) said
  ``config file not found: /dev/fd/63``: it is there, only no regular file. It is read once
  now, as any config.
- ``-c /dev/zero`` said ``not found`` too; ``-c`` of a large file (a dataset list, a log
  given by mistake) was parsed to its end: 83 s for 100 MB before its error. A config of
  more than 1 MiB is refused before it is parsed.
"""
from __future__ import annotations

import os
import threading

import pytest
from click.testing import CliRunner

from trainer.cli import cli

NO_LOGS = ("Error: drive.logs is not set in {path}; trainer status reports the checkpoints on "
           "it (--set drive.logs=drive:...)\n")


def _status(path: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["status", "-c", path])
    return result.exit_code, result.output


def test_a_config_from_a_pipe_is_read(tmp_path):
    """``-c <(...)``: the YAML is read from the pipe (its key checked: status then wants
    drive.logs), not refused as a missing file."""
    r, w = os.pipe()

    def write() -> None:
        with os.fdopen(w, "w") as fh:
            fh.write("train:\n  epochs: 60\n")
    writer = threading.Thread(target=write)
    writer.start()
    try:
        path = f"/dev/fd/{r}"
        assert _status(path) == (2, NO_LOGS.format(path=path))
    finally:
        writer.join()
        os.close(r)


def test_a_config_from_a_fifo_that_is_not_yaml_names_the_line(tmp_path):
    fifo = tmp_path / "cfg"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "w") as fh:
            fh.write("train:\n\tepochs: 3\n")
    writer = threading.Thread(target=write)
    writer.start()
    try:
        code, out = _status(str(fifo))
    finally:   # (a FIFO never opened to read holds its writer: opened here, it lets it go)
        unblock = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        writer.join(10)
        os.close(unblock)
    assert (code, out.splitlines()[-1]) == (2, (
        f"Error: config {fifo} is not valid YAML: line 2, column 1: found character '\\t' "
        "that cannot start any token (while scanning for the next token); YAML takes no tab "
        "there (it indents with spaces): replace it with spaces; fix the file there"))


def test_a_config_from_a_pipe_that_is_not_utf8_names_the_byte(tmp_path):
    r, w = os.pipe()
    os.write(w, b"train:\n  epochs: 3\n# caf\xe9\n")
    os.close(w)
    try:
        path = f"/dev/fd/{r}"
        assert _status(path) == (2, f"Error: config {path} is not UTF-8 text (line 3 holds "
                                    "the byte 0xE9); save it as UTF-8\n")
    finally:
        os.close(r)


TOO_LARGE = ("Error: config {path} holds more than 1 MiB: no config is that large; give the "
             "YAML config, e.g. -c configs/voc.yaml\n")


@pytest.mark.parametrize("make", ["/dev/zero", "large"])
def test_a_config_too_large_is_refused_before_it_is_parsed(tmp_path, make):
    path = make
    if make == "large":
        path = str(tmp_path / "2007_train.txt")
        with open(path, "w") as fh:
            fh.write("train:\n  epochs: 3\n" + "# a comment\n" * 100_000)
    assert _status(path) == (2, TOO_LARGE.format(path=path))


def test_an_empty_device_is_an_empty_config():
    """``-c /dev/null``: no keys, the defaults (status then wants drive.logs)."""
    assert _status("/dev/null") == (2, NO_LOGS.format(path="/dev/null"))


@pytest.mark.parametrize("path, line", [
    ("{tmp}/nothing.yaml", "Error: config file not found: {tmp}/nothing.yaml\n"),
])
def test_a_missing_config_is_still_not_found(tmp_path, path, line):
    assert _status(path.format(tmp=tmp_path)) == (2, line.format(tmp=tmp_path))
