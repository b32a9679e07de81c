"""attack46: a sidecar swapped for a FIFO after its checkpoint was sent. attackpush45 opened
a checkpoint's bytes as a regular file only (a FIFO held the push for good), but the sidecar
is read first to see whether it vouches for what was sent (``sidecar_copy.checked``) with a
plain open(): the push waited there for a writer, for good."""
from __future__ import annotations

import os

import pytest

from _checkpoints import pushed_then_saved, save
from _cli import run
from _drive_state import live_md5s
from _proxy import Reply


# (Without the fix the push waited for good: failed by this bound, not the suite's.)
@pytest.mark.timeout(30)
def test_a_sidecar_swapped_for_a_fifo_does_not_hold_the_push(emulator, penv, proxy, tmp_path):
    src, first, _ = pushed_then_saved(tmp_path)
    side = os.path.join(src, "epoch_002.json")
    done: list[bool] = []

    def swap_it(status: int, headers: dict, body: bytes) -> Reply:
        if not done:   # (as the checkpoint's upload opens: its sidecar is read after)
            done.append(True)
            os.mkfifo(side + ".swap")
            os.rename(side + ".swap", side)
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", swap_it)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1", "--jobs", "1")
    assert done
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        f"Error: {side} became a FIFO, socket or device while the push ran (a file when it "
        "began); not sent again: push again once it is a file"), err
    live = live_md5s(emulator, "runs/a")
    assert {n: live[n] for n in first} == first, live   # the verified pair before stays
    assert "epoch_002.json" not in live, live


@pytest.mark.timeout(30)
def test_a_sidecar_swapped_for_a_fifo_after_it_was_sent_does_not_hold_the_push(
        emulator, penv, proxy, tmp_path):
    """The swap as the sidecar's own upload opens (sent from a private copy): it is read
    again to see which old copies of its checkpoint it vouches for, after the uploads, and
    that read waited for a writer. A sidecar that cannot be read keeps them all."""
    src = str(tmp_path / "run")
    before = save(src, "epoch_001", 1, 1000.0)
    code, _, err = run("push", src, "drive:runs/a")
    assert code == 0, err
    now = save(src, "epoch_001", 1, 2000.0)   # (saved again: its old copies are replaced)
    side = os.path.join(src, "epoch_001.json")
    opened: list[bool] = []

    def swap_it(status: int, headers: dict, body: bytes) -> Reply:
        opened.append(True)
        if len(opened) == 2:   # (the checkpoint's upload, then its sidecar's)
            os.mkfifo(side + ".swap")
            os.rename(side + ".swap", side)
        return Reply(status, headers, [body])
    for method in ("POST", "PUT"):   # (a session's opening: a new file's, an update's)
        proxy.on(method, r"^/upload/(?!.*upload_id=)", swap_it)
    code, _, err = run("push", src, "drive:runs/a", "--jobs", "1")
    assert len(opened) == 2, err
    assert code == 0, err
    live = live_md5s(emulator, "runs/a")
    # The new pair (the sidecar updated in place), the old checkpoint's copy beside it:
    # nothing read vouched for its going.
    assert live == {"epoch_001.pt": sorted(before["epoch_001.pt"] + now["epoch_001.pt"]),
                    "epoch_001.json": now["epoch_001.json"]}, live
