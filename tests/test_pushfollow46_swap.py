"""pushfollow46: a link put at a file's name after the push looked at it was read through.
(a) Between the push's check (push_send: "planted since the walk") and the upload's open,
the upload decided by what stood there then (``os.path.islink``) whether to follow: a link
to ``/etc/passwd`` put there in that window (here, as Drive answers the files.get that
checks the copy to update in place) was followed, and its target went to Drive under the
log's name, exit 0. (b) A checkpoint sent again (gone from Drive before its sidecar:
push_resend) was opened by its name as it was then: a link planted there since sent its
target as the checkpoint. Now a push reads through a link only where its walk let one
through (a regular file's name is opened with ``O_NOFOLLOW``, a FIFO never waited on): it
stops with one line, exit 1, and Drive holds no byte of the link's target."""
from __future__ import annotations

import os

import pytest

from _checkpoints import md5, pushed_then_saved
from _cli import run
from _drive_state import live_md5s
from _proxy import Reply
from _swaps import once_at, pushed_log

SECRET = b"root:x:0:0:a file outside SRC\n" * 10
FIRST = b"step 1 loss 0.5\n" * 100


def _plant(path: str, swap: str, outside: str, fifo: str) -> None:
    """What stands at ``path`` from now on: a link out of SRC, a FIFO, a link to a FIFO."""
    tmp = path + ".swap"
    if swap == "link out":
        os.symlink(outside, tmp)
    elif swap == "fifo":
        os.mkfifo(tmp)
    else:
        os.symlink(fifo, tmp)
    os.rename(tmp, path)


def _outside_and_fifo(tmp_path) -> tuple[str, str]:
    """A file outside SRC holding SECRET, and a FIFO, both in ``tmp_path``."""
    outside, fifo = str(tmp_path / "secret"), str(tmp_path / "fifo")
    with open(outside, "wb") as fh:
        fh.write(SECRET)
    os.mkfifo(fifo)
    return outside, fifo


def _became(path: str, swap: str) -> str:
    kind = "a FIFO, socket or device" if swap == "fifo" else "a link"
    return (f"Error: {path} became {kind} while the push ran (a file when it began); not "
            "sent again: push again once it is a file")


# (Where a FIFO held the push, failed by this bound, not the suite's.)
@pytest.mark.timeout(60)
@pytest.mark.parametrize("swap", ["link out", "fifo", "link to a fifo"])
def test_a_link_planted_between_the_check_and_the_upload_is_not_read(
        emulator, penv, proxy, tmp_path, swap):
    src, log = pushed_log(tmp_path, FIRST)
    with open(log, "ab") as fh:
        fh.write(b"step 2 loss 0.4\n")
    outside, fifo = _outside_and_fifo(tmp_path)
    log_id = emulator.find("runs/a/train.log")["id"]
    # (the files.get of the copy updated in place: after the push's check for a link
    # planted since its walk, before the upload opens the file)
    planted = once_at(proxy, "GET", rf"^/drive/v2/files/{log_id}\?",
                      lambda: _plant(log, swap, outside, fifo))
    code, _, err = run("push", src, "drive:runs/a", "--jobs", "1")
    assert planted
    live = live_md5s(emulator, "runs/a")
    assert live == {"train.log": [md5(FIRST)]}, live   # as it was: never the link's target
    assert code == 1, err
    assert err.strip().splitlines()[-1] == _became(log, swap), err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("swap", ["link out", "fifo"])
@pytest.mark.parametrize("name, at", [("epoch_002.pt", 2), ("epoch_002.json", 1)],
                         ids=["checkpoint sent again", "sidecar once its checkpoint was sent"])
def test_a_file_of_a_checkpoint_swapped_since_it_was_sent_is_not_read(
        emulator, penv, proxy, tmp_path, name, at, swap):
    """The checkpoint: sent, then deleted from Drive (another runtime's ``push --delete``)
    before its sidecar arrived (as the sidecar's upload opens): sent again, by its name,
    where a link now stands. The sidecar (planted as the checkpoint's upload opens): read to
    see whether it vouches for the checkpoint just sent, by a plain open, which waited for
    good on a FIFO put at its name meanwhile (the link, the push's check before the
    sidecar's send caught already: kept as a guard)."""
    src, first, _ = pushed_then_saved(tmp_path)
    path = os.path.join(src, name)
    outside, fifo = _outside_and_fifo(tmp_path)
    starts: list[bool] = []

    def meanwhile(status: int, headers: dict, body: bytes) -> Reply:
        starts.append(True)
        if len(starts) == at:
            if name.endswith(".pt"):   # (the sidecar's: its checkpoint was sent and verified)
                emulator.store.delete(emulator.find("runs/a/epoch_002.pt")["id"])
            _plant(path, swap, outside, fifo)
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", meanwhile)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1", "--jobs", "1")
    assert len(starts) == at, starts   # (nothing sent again; the sidecar never sent)
    live = live_md5s(emulator, "runs/a")
    assert [md5(SECRET)] not in live.values(), live
    assert name not in live, live
    assert {n: live[n] for n in first} == first, live   # the verified pair before stays
    assert code == 1, err
    assert err.strip().splitlines()[-1] == _became(path, swap), err
