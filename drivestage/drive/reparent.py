"""A files.update that changes an item's folders (``addParents`` / ``removeParents``: a move,
an item with two parents taken out of one), asked again after a lost answer.

An attempt whose answer was lost may have been done: the retry then asks to remove a parent
the item no longer has. Drive's references do not say what Drive answers there (v2
files.update: ``removeParents``, "a comma-separated list of parent IDs to remove"), and no
public report was found (edges40): 200 with nothing changed (the emulator's default), or an
error (``Emulator.absent_parent_status``). Under an error, the item is read: where it is as
asked, that read is the answer; else the error stands. A first attempt's error is never read
again (nothing of this request was done before it)."""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Optional

from drivestage.drive.connections import counted_tries
from drivestage.drive.provenance import is_in
from drivestage.errors import DriveStageError

log = logging.getLogger("drivestage.drive.store")


def update_parents(call: Callable[[str, Callable[[], Any]], Any],
                   get: Callable[[], dict[str, Any]], f: Any, what: str,
                   param: Mapping[str, str], done: Callable[[Mapping[str, Any]], bool],
                   before: Optional[Callable[[], None]] = None) -> dict[str, Any]:
    """``f.Upload(param=param)`` (PyDrive2's files.update) under ``call`` (the retrying
    call, ``what`` naming it); the item's metadata as the answer gave it. An attempt after
    the first answered with an error: the item as ``get()`` reads it, where ``done`` says
    it is as asked; else that error, raised. ``before`` is called before each attempt (a
    lease's guard); its error is raised as it is."""
    sent = 0
    refused: list[BaseException] = []

    def once() -> Any:
        nonlocal sent
        if before is not None:
            try:
                before()
            except BaseException as exc:
                refused.append(exc)
                raise
        sent += 1
        with counted_tries():   # (a try httplib2 sent again unseen was counted as one)
            return f.Upload(param=dict(param))

    try:
        call(what, once)
    except DriveStageError as exc:
        if sent < 2 or exc in refused:
            raise
        try:
            res = get()
        except DriveStageError:
            raise exc from None
        if not done(res):
            raise
        log.info("%s: an earlier attempt's answer was lost and Drive answered the next with "
                 "an error (%s); read again, it is done", what, exc)
        return res
    return dict(f)


def moved(into: Optional[str], out_of: str) -> Callable[[Mapping[str, Any]], bool]:
    """Whether files.get's answer shows the item in ``into`` (None: anywhere) and out of
    ``out_of``: the end state a move (or a removal of one parent) asked for."""
    return lambda got: (into is None or is_in(got, into) is True) and \
        is_in(got, out_of) is False
