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

from _checkpoints import md5, save
from _cli import run
from _drive_state import live_md5s
from _proxy import Reply

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


def _became(path: str, swap: str) -> str:
    kind = "a FIFO, socket or device" if swap == "fifo" else "a link"
    return (f"Error: {path} became {kind} while the push ran (a file when it began); not "
            "sent again: push again once it is a file")


# (Where a FIFO held the push, failed by this bound, not the suite's.)
@pytest.mark.timeout(60)
@pytest.mark.parametrize("swap", ["link out", "fifo", "link to a fifo"])
def test_a_link_planted_between_the_check_and_the_upload_is_not_read(
        emulator, penv, proxy, tmp_path, swap):
    src = str(tmp_path / "run")
    os.makedirs(src)
    log = os.path.join(src, "train.log")
    with open(log, "wb") as fh:
        fh.write(FIRST)
    code, _, err = run("push", src, "drive:runs/a")
    assert code == 0, err
    with open(log, "ab") as fh:
        fh.write(b"step 2 loss 0.4\n")
    outside, fifo = str(tmp_path / "secret"), str(tmp_path / "fifo")
    with open(outside, "wb") as fh:
        fh.write(SECRET)
    os.mkfifo(fifo)
    log_id = emulator.find("runs/a/train.log")["id"]
    planted: list[bool] = []

    def plant(status: int, headers: dict, body: bytes) -> Reply:
        # (the files.get of the copy updated in place: after the push's check for a link
        # planted since its walk, before the upload opens the file)
        if not planted:
            planted.append(True)
            _plant(log, swap, outside, fifo)
        return Reply(status, headers, [body])
    proxy.on("GET", rf"^/drive/v2/files/{log_id}\?", plant)
    code, _, err = run("push", src, "drive:runs/a", "--jobs", "1")
    assert planted
    live = live_md5s(emulator, "runs/a")
    assert live == {"train.log": [md5(FIRST)]}, live   # as it was: never the link's target
    assert code == 1, err
    assert err.strip().splitlines()[-1] == _became(log, swap), err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("swap", ["link out", "fifo"])
def test_a_checkpoint_sent_again_is_not_read_through_a_link_planted_since(
        emulator, penv, proxy, tmp_path, swap):
    """Sent, then deleted from Drive (another runtime's ``push --delete``) before its
    sidecar arrived: sent again, by its name, where a link now stands."""
    src = str(tmp_path / "run")
    first = save(src, "epoch_001", 1, 1000.0)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1")
    assert code == 0, err
    save(src, "epoch_002", 2, 2000.0)
    ckpt = os.path.join(src, "epoch_002.pt")
    outside, fifo = str(tmp_path / "secret"), str(tmp_path / "fifo")
    with open(outside, "wb") as fh:
        fh.write(SECRET)
    os.mkfifo(fifo)
    starts: list[bool] = []

    def meanwhile(status: int, headers: dict, body: bytes) -> Reply:
        starts.append(True)
        if len(starts) == 2:   # (the sidecar's: its checkpoint was sent and verified)
            emulator.store.delete(emulator.find("runs/a/epoch_002.pt")["id"])
            _plant(ckpt, swap, outside, fifo)
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", meanwhile)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1", "--jobs", "1")
    assert len(starts) == 2, starts   # (nothing sent again)
    live = live_md5s(emulator, "runs/a")
    assert [md5(SECRET)] not in live.values(), live
    assert "epoch_002.pt" not in live, live
    assert {n: live[n] for n in first} == first, live   # the verified pair before stays
    assert code == 1, err
    assert err.strip().splitlines()[-1] == _became(ckpt, swap), err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("swap", ["link out", "fifo"])
def test_a_sidecar_swapped_once_its_checkpoint_was_sent_is_not_read(
        emulator, penv, proxy, tmp_path, swap):
    """The sidecar is read to see whether it vouches for the checkpoint just sent: by a plain
    open, which waited for good on a FIFO put at its name meanwhile (the link, the push's
    check before the sidecar's send caught already: kept as a guard)."""
    src = str(tmp_path / "run")
    first = save(src, "epoch_001", 1, 1000.0)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1")
    assert code == 0, err
    save(src, "epoch_002", 2, 2000.0)
    side = os.path.join(src, "epoch_002.json")
    outside, fifo = str(tmp_path / "secret"), str(tmp_path / "fifo")
    with open(outside, "wb") as fh:
        fh.write(SECRET)
    os.mkfifo(fifo)
    starts: list[bool] = []

    def meanwhile(status: int, headers: dict, body: bytes) -> Reply:
        starts.append(True)
        if len(starts) == 1:   # (the checkpoint's: its sidecar is read once it is verified)
            _plant(side, swap, outside, fifo)
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", meanwhile)
    code, _, err = run("push", src, "drive:runs/a", "--keep-last", "1", "--jobs", "1")
    assert len(starts) == 1, starts   # (the sidecar never sent)
    live = live_md5s(emulator, "runs/a")
    assert [md5(SECRET)] not in live.values(), live
    assert "epoch_002.json" not in live, live
    assert {n: live[n] for n in first} == first, live   # the verified pair before stays
    assert code == 1, err
    assert err.strip().splitlines()[-1] == _became(side, swap), err
