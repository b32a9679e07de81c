"""attacknew34: a FIFO at a local run folder's mark (``exp1/.drivestage/run-folder``, planted
by another user of the shared disk) held the push that marks the folder in ``open()`` for
good, waiting for a reader. It keeps no mark now, as a link there keeps none."""
from __future__ import annotations

import os
import threading

from drivestage.local_marks import MARK, marked, put


def test_a_fifo_at_the_mark_keeps_none_and_holds_nothing(tmp_path):
    exp1 = tmp_path / "exp1"
    (exp1 / ".drivestage").mkdir(parents=True)
    fifo = exp1 / ".drivestage" / MARK
    os.mkfifo(fifo)
    done: list[bool] = []
    worker = threading.Thread(target=lambda: done.append(put(str(exp1), True)), daemon=True)
    worker.start()
    worker.join(5)
    held = worker.is_alive()
    if held:   # (the unfixed open() waits for a reader: be one, so the thread ends)
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        worker.join(5)
    assert not held
    assert done == [False] and not marked(str(exp1))
