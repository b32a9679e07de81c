"""Two pushes into one Drive folder named two ways, one of them through a store rooted
elsewhere than My Drive: a shared drive by name (``drive:shared/Team/runs``) or "Shared with
me" (``drive:shared-with-me/Course/runs``), the other by id (``drive:id:<ID>``, what a sharing
link gives). The folder's own lock (attacky25) was keyed on the store's label too, so the two
named one folder with two locks, neither waited, and every new file was made twice."""
from __future__ import annotations

import logging
import threading

import pytest

from drivestage.upload_tree import push

from _proxy import Proxy, Reply
from test_push_safety import _md5, _no_duplicates, _run_tree


class _Seen(logging.Handler):
    """Sets ``event`` when a push says it waits for another."""

    def __init__(self, event: threading.Event):
        super().__init__(logging.WARNING)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if "is running in this process; waiting for it" in record.getMessage():
            self.event.set()


def _live_in(emu, folder_id: str) -> dict:
    return {f["title"]: f.get("md5Checksum") for f in emu.files()
            if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder")
            and (f.get("parents") or [{}])[0].get("id") == folder_id}


@pytest.mark.parametrize("where", ["shared", "shared-with-me"])
def test_a_push_by_id_waits_for_a_push_into_the_same_folder_by_its_shared_path(
        emulator, local_state, monkeypatch, where):
    if where == "shared":
        team = emulator.add_shared_drive("Team")
        folder_id = emulator.add_folder("runs", drive_id=team)
        spec = "drive:shared/Team/runs"
    else:
        course = emulator.add_folder("Course", owner="teacher@school.edu",
                                     shared_with_me="writer")
        folder_id = emulator.add_folder("Course/runs", owner="teacher@school.edu")
        assert emulator.find("Course/runs", owner="teacher@school.edu")["id"] == folder_id
        assert course
        spec = "drive:shared-with-me/Course/runs"
    src = local_state / "logs"
    files = _run_tree(src)
    second_done = threading.Event()   # ended, or said it waits for the first
    errors: list = []

    def second() -> None:
        try:
            push(str(src), f"drive:id:{folder_id}", jobs=1)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            second_done.set()

    started: list = []

    def at_the_ids(status: int, headers: dict, body: bytes) -> Reply:
        # The first push has listed DEST and asks for its new files' ids: the second runs
        # now, whole, unless it waits for the first.
        if not started:
            started.append(threading.Thread(target=second))
            started[0].start()
            assert second_done.wait(60)
        return Reply(status, headers, [body])

    handler = _Seen(second_done)
    logging.getLogger("drivestage").addHandler(handler)
    try:
        with Proxy(emulator.url) as proxy:   # (both pushes go through it: one API root)
            monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
            monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
            proxy.on("GET", r"generateIds", at_the_ids)
            push(str(src), spec, jobs=1)
            assert started
            started[0].join(60)
    finally:
        logging.getLogger("drivestage").removeHandler(handler)
    assert not errors, errors
    assert _no_duplicates(emulator) == {}
    top = {k: _md5(v) for k, v in files.items() if "/" not in k}
    assert _live_in(emulator, folder_id) == top
