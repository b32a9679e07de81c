"""Two pushes into one Drive folder, named two ways (its path, and `drive:id:<ID>`), at once
on one machine. The lock that makes two pushes into one place wait for each other was keyed
on how DEST was written, so neither waited: the second push, run whole while the first was
about to send its files, made them too, and the first then made them again: every new file
twice (attacky25; the generated ids do not help, the second push forgets its ids once its
files are verified). Once DEST is found, a push now also holds the lock of the folder."""
from __future__ import annotations

import logging
import threading

from drivestage.upload_tree import push

from _proxy import Proxy, Reply
from test_push_safety import _md5, _no_duplicates, _run_tree, _tree_of


class _Seen(logging.Handler):
    """Sets ``event`` when a push says it waits for another."""

    def __init__(self, event: threading.Event):
        super().__init__(logging.WARNING)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if "is running in this process; waiting for it" in record.getMessage():
            self.event.set()


def test_a_push_by_id_into_a_folder_a_push_by_path_is_writing_waits_for_it(
        emulator, drive_env, local_state):
    from drivestage.drive import connect

    src = local_state / "logs"
    files = _run_tree(src)
    folder_id = emulator.add_folder("Models/logs")
    second_done = threading.Event()   # ended, or said it waits for the first
    errors: list = []

    def second() -> None:
        try:
            push(str(src), f"id:{folder_id}", store=connect(api_root=proxy.url,
                                                            token="test-token"))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            second_done.set()

    started: list = []

    def at_the_ids(status: int, headers: dict, body: bytes) -> Reply:
        # The first push has listed DEST and asks for the ids of its new files (not yet
        # recorded): the second push runs now, whole, unless it waits for the first.
        if not started:
            started.append(threading.Thread(target=second))
            started[0].start()
            assert second_done.wait(60)
        return Reply(status, headers, [body])

    handler = _Seen(second_done)
    logging.getLogger("drivestage").addHandler(handler)
    try:
        with Proxy(emulator.url) as proxy:   # (both pushes go through it: one API root)
            proxy.on("GET", r"generateIds", at_the_ids)
            push(str(src), "Models/logs", store=connect(api_root=proxy.url, token="test-token"),
                 jobs=1)
            started[0].join(60)
    finally:
        logging.getLogger("drivestage").removeHandler(handler)
    assert not errors
    assert _no_duplicates(emulator) == {}
    assert _tree_of(emulator) == {k: _md5(v) for k, v in files.items()}
