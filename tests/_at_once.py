"""Two pushes at once, made deterministic: the second runs, whole, at the moment the first asks
Drive for its new files' ids (it has listed its folders and decided what to create), unless
it says it waits for the first. Without a lock between them, both make every new file."""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from _proxy import Proxy, Reply


class Waits(logging.Handler):
    """Sets ``event`` when a push says it waits for another; keeps what it said."""

    def __init__(self, event: threading.Event):
        super().__init__(logging.WARNING)
        self.event, self.said = event, []

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting for it" in record.getMessage():
            self.said.append(record.getMessage())
            self.event.set()


def live_in(emu, folder_id: str) -> dict:
    """Title -> md5 of the files (not folders) in the trash-free folder ``folder_id``."""
    return {f["title"]: f.get("md5Checksum") for f in emu.files()
            if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder")
            and (f.get("parents") or [{}])[0].get("id") == folder_id}


@contextmanager
def second_at_the_ids(proxy: Proxy, second: Callable[[], None]) -> Iterator[list]:
    """In the block, the first push through ``proxy`` that asks for ids runs ``second`` in a
    thread and gets its answer once ``second`` has ended or said it waits. Yields what the
    pushes said about waiting; on leaving, ``second`` has run, ended and raised nothing."""
    done = threading.Event()   # ended, or said it waits for the first
    errors: list = []
    started: list = []

    def run_second() -> None:
        try:
            second()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    def at_the_ids(status: int, headers: dict, body: bytes) -> Reply:
        if not started:
            started.append(threading.Thread(target=run_second))
            started[0].start()
            assert done.wait(60)
        return Reply(status, headers, [body])

    handler = Waits(done)
    logging.getLogger("drivestage").addHandler(handler)
    try:
        proxy.on("GET", r"generateIds", at_the_ids)
        yield handler.said
        assert started, "the first push never asked Drive for ids"
        started[0].join(60)
        assert not started[0].is_alive()
    finally:
        logging.getLogger("drivestage").removeHandler(handler)
    assert not errors, errors
