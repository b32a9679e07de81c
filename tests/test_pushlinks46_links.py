"""pushlinks46: a link inside SRC that the walk let through (it leads to another file of SRC)
was read through again at every pass, by its name: re-pointed after the walk (at
``/etc/passwd``, a key, a FIFO), the upload, a re-send or the hash that decides to send read
the new target, and Drive got its bytes under the link's name, exit 0. Now a push reads the
file the walk found the link leading to, opened without following a link (a link planted
there too is refused, one line). And a hash read only to decide whether to send (a file the
store holds at the same size) never reads through a link planted at a file's name since the
walk, nor waits on a FIFO: one line, exit 1."""
from __future__ import annotations

import os

import pytest

from _checkpoints import md5, save
from _cli import run
from _drive_state import live_md5s
from _proxy import Reply
from _swaps import once_at, pushed_log

SECRET = b"root:x:0:0:a file outside SRC\n" * 10
FIRST = b"step 1 loss 0.5\n" * 100
MORE = b"step 2 loss 0.4\n"


def _repoint(link: str, to: str) -> None:
    """``link`` leads to ``to`` from now on (atomically, as ``ln -sfn`` does)."""
    tmp = link + ".swap"
    os.symlink(to, tmp)
    os.rename(tmp, link)


def _outside(tmp_path, swap: str) -> str:
    """Where the link is re-pointed: a file outside SRC, or a FIFO."""
    if swap == "fifo":
        os.mkfifo(str(tmp_path / "fifo"))
        return str(tmp_path / "fifo")
    (tmp_path / "secret").write_bytes(SECRET)
    return str(tmp_path / "secret")


# (Where a FIFO held the push, failed by this bound, not the suite's.)
@pytest.mark.timeout(60)
@pytest.mark.parametrize("swap", ["link out", "fifo"])
def test_a_link_in_src_repointed_while_its_copy_is_updated_sends_what_the_walk_found(
        emulator, penv, proxy, tmp_path, swap):
    """``latest.log -> train.log``, both sent; the log grows, and the link is re-pointed out
    of SRC as Drive answers the files.get of the copy updated in place (after the walk and
    the push's own checks, before the upload opens it)."""
    src = str(tmp_path / "run")
    os.makedirs(src)
    log, link = os.path.join(src, "train.log"), os.path.join(src, "latest.log")
    with open(log, "wb") as fh:
        fh.write(FIRST)
    os.symlink("train.log", link)
    code, _, err = run("push", src, "drive:runs/a")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {"train.log": [md5(FIRST)],
                                             "latest.log": [md5(FIRST)]}
    with open(log, "ab") as fh:
        fh.write(MORE)
    outside = _outside(tmp_path, swap)
    link_id = emulator.find("runs/a/latest.log")["id"]
    planted = once_at(proxy, "GET", rf"^/drive/v2/files/{link_id}\?",
                      lambda: _repoint(link, outside))
    code, _, err = run("push", src, "drive:runs/a", "--jobs", "1")
    assert planted
    assert code == 0, err
    # What the walk found at latest.log: train.log as it is now, never the new target.
    assert live_md5s(emulator, "runs/a") == {"train.log": [md5(FIRST + MORE)],
                                             "latest.log": [md5(FIRST + MORE)]}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("swap", ["link out", "fifo"])
def test_a_checkpoint_link_sent_again_is_not_read_through_its_new_target(
        emulator, penv, proxy, tmp_path, swap):
    """``last.pt -> epoch_002.pt`` (and ``last.json``) sent, then deleted from Drive (another
    runtime's ``push --delete``) before its sidecar arrived, the link re-pointed out of SRC
    meanwhile: sent again, it is what the walk found (epoch_002.pt), not the new target."""
    src = str(tmp_path / "run")
    save(src, "epoch_001", 1, 1000.0)
    code, _, err = run("push", src, "drive:runs/a")
    assert code == 0, err
    files = save(src, "epoch_002", 2, 2000.0)
    for name in ("last.pt", "last.json"):
        os.symlink(name.replace("last", "epoch_002"), os.path.join(src, name))
    ckpt = os.path.join(src, "last.pt")
    outside = _outside(tmp_path, swap)
    starts: list[str] = []

    def meanwhile(status: int, headers: dict, body: bytes) -> Reply:
        starts.append("x")
        found = emulator.find("runs/a/last.pt")
        if found is not None and len(starts) == 4:   # (both .pt sent, a sidecar's turn)
            emulator.store.delete(found["id"])
            _repoint(ckpt, outside)
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", meanwhile)
    code, _, err = run("push", src, "drive:runs/a", "--jobs", "1")
    assert len(starts) == 5, starts   # (last.pt sent once more)
    live = live_md5s(emulator, "runs/a")
    assert [md5(SECRET)] not in live.values(), live
    assert code == 0, err
    assert live["last.pt"] == files["epoch_002.pt"], live
    assert live["last.json"] == files["epoch_002.json"], live
    assert "sending it again" in err, err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("swap", ["link out", "link to a fifo"])
def test_a_hash_to_decide_never_reads_through_a_link_planted_since_the_walk(
        emulator, penv, proxy, tmp_path, swap):
    """train.log unchanged (Drive holds it, same size): the push hashes it to decide. A link
    put at its name at the push's first listing (after its walk), to a file of the same size
    outside SRC, or to a FIFO: never read (the hash followed it: a FIFO's error was no line of
    ours, and a link to a copy of the same bytes was called unchanged)."""
    src, log = pushed_log(tmp_path, FIRST)
    # (a new mtime: the md5 cache does not answer for it)
    os.utime(log, (3000.0, 3000.0))
    if swap == "link out":
        target = str(tmp_path / "copy")
        with open(target, "wb") as fh:
            fh.write(FIRST)   # the same bytes: the followed hash said "unchanged", exit 0
    else:
        target = str(tmp_path / "fifo")
        os.mkfifo(target)
    done = once_at(proxy, "GET", r"^/drive/v2/files", lambda: _repoint(log, target))
    code, _, err = run("push", src, "drive:runs/a", "--jobs", "1")
    assert done
    assert live_md5s(emulator, "runs/a") == {"train.log": [md5(FIRST)]}
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        f"Error: {log} became a link while the push ran (a file when it began); not sent "
        "again: push again once it is a file"), err


@pytest.mark.timeout(60)
def test_a_fifo_at_a_sidecars_name_once_it_was_sent_never_holds_the_push(
        emulator, penv, proxy, tmp_path):
    """``last.pt`` saved again and sent as a new copy, its sidecar after it (from a private
    copy); a FIFO put at ``last.json``'s name as that upload starts. Before the old copy
    goes, the sidecar is read to see which copies it vouches for: a plain open waited there
    for good. Now it is no sidecar: the old copy stays (nothing it may vouch for goes)."""
    src = str(tmp_path / "run")
    first = save(src, "last", 1, 1000.0)
    code, _, err = run("push", src, "drive:runs/a")
    assert code == 0, err
    files = save(src, "last", 2, 2000.0)
    side = os.path.join(src, "last.json")
    starts: list[bool] = []

    def meanwhile(status: int, headers: dict, body: bytes) -> Reply:
        starts.append(True)
        if len(starts) == 3:   # (last.pt's session and bytes, then the sidecar's session:
            # in place, sent from its private copy)
            os.mkfifo(side + ".swap")
            os.rename(side + ".swap", side)
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", meanwhile)
    proxy.on("PUT", r"^/upload/", meanwhile)
    code, _, err = run("push", src, "drive:runs/a", "--jobs", "1")
    assert len(starts) == 4, (starts, err)
    live = live_md5s(emulator, "runs/a")
    assert live["last.json"] == files["last.json"], (live, first, files, err)
    assert sorted(live["last.pt"]) == sorted(files["last.pt"] + first["last.pt"]), live
    assert code == 0, err
