"""trashed40: a mirror (``drivestage mirror``, :class:`drivestage.mirror.Mirror`) whose DEST,
a folder above it or a subfolder of it is trashed on Drive while it runs. The store it keeps
from period to period knows those folders' ids, and Drive takes files into a trashed folder
without an error: no period may go on sending into the trash. Each period's push makes the
path anew and sends everything there; the trashed folder, with what was sent into it, stays
in the trash, restorable. Said once, by the period that finds it."""
from __future__ import annotations

import hashlib
import logging

import pytest

from drivestage.mirror import Mirror

from _drive_state import live_md5s


def _md5s(files: dict) -> dict:
    return {n: [hashlib.md5(d).hexdigest()] for n, d in files.items()}


@pytest.mark.parametrize("trashed", ["runs", "runs/logs", "runs/logs/sub"])
def test_a_folder_trashed_between_periods_is_made_anew_and_said_once(
        emulator, store, tmp_path, caplog, trashed):
    src = tmp_path / "logs"
    (src / "sub").mkdir(parents=True)
    files = {"results.csv": b"epoch\n1\n", "sub/a.txt": b"a"}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    m = Mirror(str(src), (store, "runs/logs"), None).start()
    try:
        m.flush(60)
        folder = emulator.find(trashed)["id"]
        emulator.store.set_trashed(folder, True)
        files["sub/b.txt"] = b"b"
        (src / "sub/b.txt").write_bytes(b"b")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            m.flush(60)
            m.flush(60)
    finally:
        m.stop(60)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    # Once, by the folder made anew, DEST's own where a folder above it went (a subfolder:
    # made anew without a word before leftovers40).
    made_anew = "runs/logs/sub" if trashed == "runs/logs/sub" else "runs/logs"
    assert said == [f"drive:{made_anew} is no longer at its path on Drive (moved, renamed, "
                    "trashed or deleted since this process last pushed there); making it anew "
                    "and sending everything to it: put the folder back first to keep one "
                    "copy"], said
    assert live_md5s(emulator, "runs/logs") == \
        _md5s({"results.csv": files["results.csv"]}) | {"sub": [None]}   # (a folder)
    assert live_md5s(emulator, "runs/logs/sub") == _md5s({"a.txt": b"a", "b.txt": b"b"})
    assert emulator.find(trashed)["id"] != folder
    assert emulator.store.get(folder)["trashed"]   # (left there, restorable)
    # Nothing sent into the trash after it was trashed: b.txt went only to the live folder.
    in_trash = [f["title"] for f in emulator.files()
                if f["labels"]["trashed"] and f["title"] == "b.txt"]
    assert in_trash == []


def test_dest_trashed_mid_period_stops_sending_into_the_trash(emulator, env, tmp_path,
                                                              caplog):
    """DEST goes to the trash as a period's first upload lands: the next upload's answer
    says it arrived in the trash, and that period goes on into the path made anew (it sent
    all 20 into the trash first, then all 20 again)."""
    from _proxy import Proxy, Reply
    from drivestage.drive import connect

    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_bytes(b"epoch\n")
    with Proxy(emulator.url) as proxy:
        store = connect(api_root=proxy.url, token="test-token")
        m = Mirror(str(src), (store, "runs/logs"), None, jobs=1).start()
        try:
            m.flush(60)
            folder = emulator.find("runs/logs")["id"]
            files = {f"f{i:02d}.txt": b"%d" % i for i in range(20)}
            for name, data in files.items():
                (src / name).write_bytes(data)

            def trash(status: int, headers: dict, body: bytes) -> Reply:
                if status in (200, 201):
                    emulator.store.set_trashed(folder, True)
                return Reply(status, headers, [body])
            proxy.on("PUT", r"^/upload/", trash, times=1)
            with caplog.at_level(logging.WARNING):
                m.flush(60)
        finally:
            m.stop(60)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and "went to the trash while this push wrote into it" in said[0]
    files["results.csv"] = b"epoch\n"
    assert live_md5s(emulator, "runs/logs") == _md5s(files)
    assert sorted(f["title"] for f in emulator.files() if f["labels"]["trashed"]
                  and f["title"].startswith("f")) == ["f00.txt", "f01.txt"]
