"""A folder pull of ``drive:run`` whose one file's download the emulator holds while the test
changes Drive (trashes, renames, deletes): no sleeps, the change lands mid-pull."""
from __future__ import annotations

import threading
from typing import Callable

from _cli import run


def pull_while_held(emulator, file_id: str, change: Callable[[], object], dest
                    ) -> tuple[int, str, str]:
    """``drivestage pull -q --jobs 1 drive:run DEST`` in a thread; ``change()`` called once the
    download of ``file_id`` reached the emulator (held there), then the download let go.
    Returns the command's exit code, stdout and stderr."""
    held = emulator.faults.hold(file_id, 5, timeout=20)
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(run=run(
        "pull", "-q", "--jobs", "1", "drive:run", str(dest))), daemon=True)
    t.start()
    try:
        assert held.reached.wait(20), "the file's download never started"
        change()
    finally:
        held.release()
    t.join(30)
    assert not t.is_alive()
    return box["run"]
