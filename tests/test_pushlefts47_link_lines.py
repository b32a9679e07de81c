"""pushlefts47: a link inside SRC that the walk let through is read where it led
(pushlinks46), and the lines about it named only that file: ``push --exclude train.log``
of ``latest.log -> train.log`` ended in an error about train.log, a file the user had left
out. Now they name the link and where it led: ``latest.log (-> train.log)``."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _drive_state import live_md5s
from _proxy import Reply


@pytest.mark.timeout(60)
def test_a_line_about_a_link_the_walk_let_through_names_the_link_and_its_file(
        emulator, penv, proxy, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    log = src / "train.log"
    log.write_bytes(b"step 1 loss 0.5\n")
    os.symlink("train.log", src / "latest.log")
    done: list[bool] = []

    def swap_it(status: int, headers: dict, body: bytes) -> Reply:
        if not done:   # (the push's first listing: after its walk)
            done.append(True)
            os.mkfifo(str(src / "fifo"))
            os.rename(src / "fifo", log)
        return Reply(status, headers, [body])
    proxy.on("GET", r"^/drive/v2/files", swap_it)
    code, _, err = run("push", str(src), "drive:runs/a", "--exclude", "train.log")
    assert done
    assert live_md5s(emulator, "runs/a") == {}
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        f"Error: {src}/latest.log (-> train.log) became a FIFO, socket or device while the "
        "push ran (a file when it began); not sent again: push again once it is a file"), err
