"""What a push test changes in SRC at a chosen request of the push (a proxy's rule), after
the push's walk looked: a file grown, a name re-pointed, a folder swapped for a link
(attack46, pushfollow46, pushlinks46, pushlefts47)."""
from __future__ import annotations

import os
from typing import Callable, Optional

from _proxy import Reply


def once_at(proxy, method: str, pattern: str, action: Callable[[], None]) -> list[bool]:
    """At the first request ``method`` ``pattern`` the proxy passes on, ``action()`` before
    Drive's answer goes back. The list it returns holds True once that was done."""
    done: list[bool] = []

    def rule(status: int, headers: dict, body: bytes) -> Reply:
        if not done:
            done.append(True)
            action()
        return Reply(status, headers, [body])
    proxy.on(method, pattern, rule)
    return done


def swapped_at(proxy, method: str, pattern: str, folder, aside, link_to,
               first: Optional[Callable[[], None]] = None) -> list[bool]:
    """:func:`once_at`: ``first()`` (when given), then ``folder`` moved to ``aside`` and a
    link to ``link_to`` put in its place."""
    def swap() -> None:
        if first is not None:
            first()
        os.rename(folder, aside)
        os.symlink(link_to, folder)
    return once_at(proxy, method, pattern, swap)


def pushed_log(tmp_path, data: bytes) -> tuple[str, str]:
    """SRC ``tmp_path/run`` whose train.log (``data``) a push sent to drive:runs/a (exit 0):
    (SRC, the log)."""
    from _cli import run

    src = str(tmp_path / "run")
    os.makedirs(src)
    log = os.path.join(src, "train.log")
    with open(log, "wb") as fh:
        fh.write(data)
    code, _, err = run("push", src, "drive:runs/a")
    assert code == 0, err
    return src, log
