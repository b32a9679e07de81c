"""DEST moved or renamed on Drive while a push writes into it (the user tidying Drive while a
mirror runs). The uploads go on by id into the folder where it is now; the next push finds
nothing at the path and makes it anew, sending everything again (a second copy of every
checkpoint, counted against the quota). Before, neither push said a word. The push now says,
once, where the folder went and what the next push will do; it never follows the folder
(a push writes only under the path it was given) and never deletes what it sent there."""
from __future__ import annotations

import hashlib
import logging

import pytest

from _drive_state import live_md5s
from _messages import renders, shown
from _proxy import Reply

MOVED = "was moved or renamed on Drive while this push wrote into it"


@pytest.fixture
def store(proxy, local_state):
    from drivestage.drive import connect

    return connect(api_root=proxy.url, token="test-token")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _run_folder(tmp_path, sub: bool = False) -> tuple:
    src = tmp_path / "run"
    at = src / "sub" if sub else src
    at.mkdir(parents=True)
    files = {f"f{i}.txt": b"data %d" % i for i in range(3)}
    for name, data in files.items():
        (at / name).write_bytes(data)
    return src, {n: [md5(d)] for n, d in files.items()}


def _after_first_upload(proxy, change) -> list:
    """Run ``change`` once, right after the first upload's answer."""
    done: list = []

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        if status in (200, 201) and not done:
            done.append(change())
        return Reply(status, headers, [body])
    proxy.on("PUT", r"^/upload/", mutate)
    proxy.on("POST", r"^/upload/", mutate)
    return done


@renders(MOVED)
@pytest.mark.parametrize("how", ["moved", "renamed"])
def test_dest_moved_while_a_push_writes_into_it_is_said_once(emulator, proxy, store, tmp_path,
                                                            caplog, how):
    from drivestage.upload_tree import push

    emulator.add_file("runs/a/old.txt", b"old")
    folder_id = emulator.find("runs/a")["id"]
    archive = emulator.add_folder("archive")
    meta = {"title": "a-final"} if how == "renamed" else {}
    moves = {"add_parents": [archive], "remove_parents": [emulator.find("runs")["id"]]} \
        if how == "moved" else {}
    src, want = _run_folder(tmp_path)
    done = _after_first_upload(proxy, lambda: emulator.store.update_meta(folder_id, meta,
                                                                           **moves))
    caplog.set_level(logging.WARNING)
    result = push(str(src), (store, "runs/a"), jobs=1)
    assert done and len(result.uploaded) == 3
    lines = [r.getMessage() for r in caplog.records if MOVED in r.getMessage()]
    assert len(lines) == 1, caplog.text
    shown(MOVED, lines[0])
    where = "drive:archive/a" if how == "moved" else "drive:runs/a-final"
    assert lines[0] == (
        f"drive:runs/a {MOVED} (it is now {where}); what this push sent is there. The next "
        "push makes drive:runs/a anew and sends everything to it again: move the folder back "
        "first to keep one copy"), lines[0]
    # Nothing the push sent was deleted or left the moved folder.
    moved = "archive/a" if how == "moved" else "runs/a-final"
    assert emulator.find(moved)["id"] == folder_id
    want["old.txt"] = [md5(b"old")]
    assert live_md5s(emulator, moved) == want
    assert emulator.find("runs/a") is None


@renders(MOVED)
def test_a_subfolder_moved_out_of_dest_is_said_too(emulator, proxy, store, tmp_path, caplog):
    from drivestage.upload_tree import push

    emulator.add_file("runs/a/sub/old.txt", b"old")
    sub_id = emulator.find("runs/a/sub")["id"]
    src, want = _run_folder(tmp_path, sub=True)
    done = _after_first_upload(proxy, lambda: emulator.store.update_meta(
        sub_id, {}, add_parents=[emulator.find("runs")["id"]],
        remove_parents=[emulator.find("runs/a")["id"]]))
    caplog.set_level(logging.WARNING)
    push(str(src), (store, "runs/a"), jobs=1)
    assert done
    lines = [r.getMessage() for r in caplog.records if MOVED in r.getMessage()]
    assert lines and lines[0].startswith(f"drive:runs/a/sub {MOVED} (it is now "
                                         "drive:runs/sub)"), caplog.text
    shown(MOVED, lines[0])
    assert len(lines) == 1
    want["old.txt"] = [md5(b"old")]
    assert live_md5s(emulator, "runs/sub") == want


def test_no_word_when_nothing_moved_a_shortcut_on_the_path_or_dest_given_by_id(
        emulator, proxy, store, tmp_path, caplog):
    """The check must not cry wolf: a push whose folders stayed put, one whose path goes
    through a folder shortcut (the target's own parent and title differ from the
    shortcut's), and one whose DEST is given by id and moved (an id names no path)."""
    from drivestage.upload_tree import push

    caplog.set_level(logging.WARNING)
    src, _ = _run_folder(tmp_path, sub=True)

    def changed(i: int) -> str:   # a file in DEST and one in a subfolder, sent each time
        (src / "top.txt").write_bytes(b"top %d" % i)
        (src / "sub" / "f0.txt").write_bytes(b"changed %d" % i)
        return str(src)
    push(changed(0), (store, "runs/a"), jobs=1)
    target = emulator.add_folder("elsewhere/real-name")
    emulator.add_shortcut("links/runs", target)
    push(changed(1), (store, "links/runs/b"), jobs=1)
    push(changed(2), (store, "links/runs"), jobs=1)   # known to the store, through a shortcut
    push(changed(3), (store, "links/runs"), jobs=1)
    by_id = emulator.add_folder("byid/x")
    done = _after_first_upload(proxy, lambda: emulator.store.update_meta(
        by_id, {"title": "y"}))
    push(changed(4), (store, f"id:{by_id}"), jobs=1)
    assert done
    assert live_md5s(emulator, "elsewhere/real-name")["top.txt"] == [md5(b"top 3")]
    assert MOVED not in caplog.text, caplog.text
    assert live_md5s(emulator, "byid/y/sub")["f0.txt"] == [md5(b"changed 4")]


GONE = "is no longer at its path on Drive"


@renders(GONE)
def test_dest_moved_between_two_pushes_of_one_store_is_said(emulator, store, tmp_path,
                                                            caplog):
    """A mirror's store keeps DEST's id from one period to the next. The user renames the
    folder between two periods: the next period makes the path anew and sends everything
    again (what a fresh process does too), and now says why."""
    from drivestage.upload_tree import push

    src, want = _run_folder(tmp_path)
    push(str(src), (store, "runs/a"), jobs=1)
    folder_id = emulator.find("runs/a")["id"]
    emulator.store.update_meta(folder_id, {"title": "a-kept"})
    caplog.set_level(logging.WARNING)
    result = push(str(src), (store, "runs/a"), jobs=1)
    lines = [r.getMessage() for r in caplog.records if GONE in r.getMessage()]
    assert lines == [f"drive:runs/a {GONE} (moved, renamed, trashed or deleted since this "
                     "process last pushed there); making it anew and sending everything to "
                     "it: put the folder back first to keep one copy"], caplog.text
    shown(GONE, lines[0])
    assert sorted(result.uploaded) == sorted(want)
    assert live_md5s(emulator, "runs/a") == live_md5s(emulator, "runs/a-kept") == want
    caplog.clear()
    push(str(src), (store, "runs/a"), jobs=1)   # the new folder is the path's now: no word
    assert GONE not in caplog.text
