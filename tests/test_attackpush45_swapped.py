"""attackpush45: a checkpoint that changes while it is uploaded is sent again, opened by its
name again; what stands at that name then was opened as it came. Replaced meanwhile by a
link to a file outside SRC (``/etc/passwd``), the push sent that file's bytes as the
checkpoint (the walk skips such links); by a FIFO, or a link to one, it waited for a writer
for good; by a folder, it stopped with IsADirectoryError's traceback. Now a pass opens the
name as the upload began with it (through no link planted since, a regular file only), and
the push stops with one line, exit 1; the verified pair before stays on Drive."""
from __future__ import annotations

import os

import pytest

from _checkpoints import md5, pushed_then_saved
from _cli import run
from _drive_state import live_md5s
from _proxy import Reply

SECRET = b"root:x:0:0:a file outside SRC\n" * 10


# (Without the fix a FIFO held the push for good: failed by this bound, not the suite's.)
@pytest.mark.timeout(60)
@pytest.mark.parametrize("swap, became", [
    ("link out", "a link"), ("fifo", "a FIFO, socket or device"),
    ("link to a fifo", "a link"), ("folder", "a folder")])
def test_a_checkpoint_swapped_while_sent_again_is_not_opened_as_it_came(
        emulator, penv, proxy, tmp_path, swap, became):
    src, first, _ = pushed_then_saved(tmp_path)
    path = os.path.join(src, "epoch_002.pt")
    outside = tmp_path / "secret"
    outside.write_bytes(SECRET)
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    def swap_it(status: int, headers: dict, body: bytes) -> Reply:
        # (as the upload's session opens: the file changes, then its name is swapped)
        with open(path, "ab") as fh:
            fh.write(b"saved again")
        tmp = path + ".swap"
        if swap == "link out":
            os.symlink(str(outside), tmp)
        elif swap == "fifo":
            os.mkfifo(tmp)
        elif swap == "link to a fifo":
            os.symlink(fifo, tmp)
        else:
            os.mkdir(tmp)
            os.unlink(path)
        os.rename(tmp, path)
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", swap_it, times=1)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1", "--jobs", "1")
    live = live_md5s(emulator, "runs/a")
    assert [md5(SECRET)] not in live.values(), live
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        f"Error: {path} became {became} while the push ran (a file when it began); not sent "
        "again: push again once it is a file"), err
    assert {n: live[n] for n in first} == first, live   # the verified pair before stays
    assert "epoch_002.json" not in live, live


@pytest.mark.timeout(60)
@pytest.mark.parametrize("swap", [
    "fifo",
    "link out",
])
def test_a_checkpoint_swapped_after_the_walk_is_not_read_as_it_came(
        emulator, penv, proxy, tmp_path, swap):
    """The swap at the push's first listing (after its walk, before any hash or upload):
    the plan hashed the FIFO (to see whether its sidecar vouches for it) and waited there
    for good; it now reads it as no file, and the upload says so."""
    src, first, _ = pushed_then_saved(tmp_path)
    path = os.path.join(src, "epoch_002.pt")
    outside = tmp_path / "secret"
    outside.write_bytes(SECRET)
    done: list[bool] = []

    def swap_it(status: int, headers: dict, body: bytes) -> Reply:
        if not done:
            done.append(True)
            tmp = path + ".swap"
            if swap == "fifo":
                os.mkfifo(tmp)
            else:
                os.symlink(str(outside), tmp)
            os.rename(tmp, path)
        return Reply(status, headers, [body])
    proxy.on("GET", r"^/drive/v2/files", swap_it)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1", "--jobs", "1")
    live = live_md5s(emulator, "runs/a")
    assert [md5(SECRET)] not in live.values(), live
    assert code == 1, err
    kind = "a FIFO, socket or device" if swap == "fifo" else "a link"
    assert err.strip().splitlines()[-1] == (
        f"Error: {path} became {kind} while the push ran (a file when it began); not sent "
        "again: push again once it is a file"), err
    assert live == first, live
