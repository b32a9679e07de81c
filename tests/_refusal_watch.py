"""A starting trainer's lease watched in a thread while the test renews the holder's claim
(fence49, claim50): the watch says the lease is held at its first listing (an event, not a
wait), and the trainer is refused once it sees the holder renew."""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterator


class Said(logging.Handler):
    """Sets ``event`` once a starting trainer's watch says the lease is held."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "the run's lease is held by" in record.getMessage():
            self.event.set()


@contextmanager
def watching(lease: Any) -> "Iterator[tuple[Said, list, threading.Thread]]":
    """``lease.acquire()`` started in a thread: (the watch's event, the LeaseHeldError it
    raised once it did, the thread). The test waits for the event, renews, joins the thread."""
    from trainer.errors import LeaseHeldError

    said, log = Said(), logging.getLogger("trainer.lease")
    log.addHandler(said)
    refused: list[BaseException] = []

    def start() -> None:
        try:
            lease.acquire()
        except LeaseHeldError as exc:
            refused.append(exc)

    watcher = threading.Thread(target=start)
    try:
        watcher.start()
        yield said, refused, watcher
    finally:
        log.removeHandler(said)
