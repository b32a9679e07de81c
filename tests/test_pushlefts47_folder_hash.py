"""pushlefts47: a folder of SRC swapped for a link to a folder outside SRC after the push's
walk. attack46 refused to *send* through it, but the reads that only hash a walked file (to
decide whether to send it: the plan's, pruning's, a sidecar's) opened it by its path with
O_NOFOLLOW on the last component only: they read the file of that name outside SRC (a copy
of the same bytes there had the push call the file unchanged, exit 0). Now every read of a
walked file lands where the walk found it, or the push stops with one line, exit 1."""
from __future__ import annotations

import os

import pytest

from _checkpoints import md5
from _cli import run
from _drive_state import live_md5s
from _swaps import swapped_at

FIRST = b"step 1 loss 0.5\n" * 100


def _sub_log_pushed(tmp_path):
    """SRC ``tmp_path/run`` whose sub/train.log (FIRST) a push sent to drive:runs/a: (SRC,
    the log)."""
    src = tmp_path / "run"
    (src / "sub").mkdir(parents=True)
    log = src / "sub" / "train.log"
    log.write_bytes(FIRST)
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    return src, log


@pytest.mark.timeout(60)
def test_a_hash_to_decide_never_reads_through_a_folder_swapped_since_the_walk(
        emulator, penv, proxy, tmp_path):
    """sub/train.log unchanged (Drive holds it, same size): the push hashes it to decide.
    ``sub`` swapped at the push's first listing (after its walk) for a link to a folder
    outside SRC holding a train.log of the same bytes: never read."""
    src, log = _sub_log_pushed(tmp_path)
    os.utime(log, (3000.0, 3000.0))   # (a new mtime: the md5 cache does not answer for it)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train.log").write_bytes(FIRST)
    done = swapped_at(proxy, "GET", r"^/drive/v2/files", src / "sub", tmp_path / "sub.before",
                      tmp_path / "out")
    code, _, err = run("push", str(src), "drive:runs/a", "--jobs", "1")
    assert done
    assert live_md5s(emulator, "runs/a/sub") == {"train.log": [md5(FIRST)]}
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        f"Error: {src}/sub became a link while the push ran (a folder when it began); "
        "not sent again: push again once it is a folder"), err


SECRET = b"root:x:0:0:a file outside SRC\n" * 10


@pytest.mark.timeout(60)
def test_a_folder_swapped_as_its_file_is_updated_in_place_is_not_read_through(
        emulator, penv, proxy, tmp_path):
    """sub/train.log grew since it was sent: updated in place. ``sub`` swapped for a link to
    a folder outside SRC as Drive answers the files.get before that update (after the
    push's own look at the folders on the way, before the upload's first open)."""
    src, log = _sub_log_pushed(tmp_path)
    with open(log, "ab") as fh:
        fh.write(b"step 2 loss 0.4\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train.log").write_bytes(SECRET)
    log_id = emulator.find("runs/a/sub/train.log")["id"]
    done = swapped_at(proxy, "GET", rf"^/drive/v2/files/{log_id}\?", src / "sub",
                      tmp_path / "sub.before", tmp_path / "out")
    code, _, err = run("push", str(src), "drive:runs/a", "--jobs", "1")
    assert done
    found = [f for f in emulator.files() if f.get("md5Checksum") == md5(SECRET)]
    assert found == [], err
    assert live_md5s(emulator, "runs/a/sub") == {"train.log": [md5(FIRST)]}
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        f"Error: {src}/sub became a link while the push ran (a folder when it began); "
        "not sent again: push again once it is a folder"), err
