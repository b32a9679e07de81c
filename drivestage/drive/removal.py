"""Deleting one Drive item, or moving it to the trash where Drive allows only that (a part
of :class:`drivestage.drive.store.DriveStore`)."""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Optional

from drivestage.command import stopping
from drivestage.drive import answers, connections
from drivestage.errors import (ChangedSinceCheckedError, DriveStageError, PermissionDeniedError,
                               WebPageRefusalError)

log = logging.getLogger("drivestage.drive.store")

#: Shared drives whose "delete needs the Manager role" warning this process has shown.
_TRASH_WARNED: set[str] = set()
_TRASH_WARNED_LOCK = threading.Lock()


def _unlocked_in_child() -> None:
    # A thread of the parent held it as the process forked: the child has no such thread.
    global _TRASH_WARNED_LOCK
    _TRASH_WARNED_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_unlocked_in_child)


def remove(call: Callable[[str, Callable[[], None]], None], f: Any, where: str, trash: bool,
           *, drive_id: Optional[str], scope: str,
           check: Optional[Callable[[], None]] = None,
           unanswered: Optional[list[str]] = None,
           send: Optional[Callable[[bool, bool], None]] = None) -> None:
    """Delete the PyDrive2 file ``f`` (``where`` names it) through ``call`` (the store's
    retrying call), or trash it when ``trash``; a permanent delete Drive refuses is tried as
    a trash (a shared drive's Content manager), with one warning per ``scope`` (the shared
    drive) and process. An answer lost after Drive did it: the retry's 404 is success.
    ``check`` (a push's guard) before each request, each retry's too (guards40); where it
    refuses a retry, ``where`` goes into ``unanswered``: a try was sent, its answer not had
    (it may have gone: attackguard40). ``send(to_trash, first_try)``, where given, sends
    each try in place of ``f``'s own (one that names the etag the check read:
    :func:`drivestage.drive.batches.sender`); Drive's 412 to it is a
    :class:`~drivestage.errors.ChangedSinceCheckedError`, said in one line and raised: the
    item changed since its check, and stays."""
    refusals: list[BaseException] = []   # the guard's: raised as they are

    def attempt(to_trash: bool) -> None:
        tried: list[int] = []

        def once() -> None:
            if check is not None:
                try:
                    check()
                except BaseException as exc:
                    refusals.append(exc)
                    if tried and unanswered is not None:
                        unanswered.append(where)
                    raise
            tried.append(1)
            try:
                with connections.counted_tries():   # (each try after the guard: counted)
                    if send is not None:
                        send(to_trash, len(tried) == 1)
                    else:
                        (f.Trash if to_trash else f.Delete)()
            except Exception as exc:
                failure = answers.failure_of(exc)
                if failure is not None and failure.gone and len(tried) > 1:
                    return  # an earlier attempt went through before its answer was lost
                raise

        call(f"{'trash' if to_trash else 'delete'} {where}", once)

    try:
        attempt(trash)
    except ChangedSinceCheckedError as changed:
        log.warning("%s", changed)
        raise
    except PermissionDeniedError as refused:
        try:
            if trash or not answers.drive_refused(refused):   # a filter's page: no trash
                raise
            attempt(True)
        except DriveStageError as again:
            if again in refusals:   # (the guard's, never "not removed")
                raise
            if isinstance(again, ChangedSinceCheckedError):
                log.warning("%s", again)
                raise
            raise not_removed(where, refused, again, drive_id) from None
        warn_trashed_instead(scope, where, refused, drive_id)


def warn_trashed_instead(scope: str, where: str, refused: BaseException,
                         drive_id: Optional[str]) -> None:
    """Said once per ``scope`` and process: ``where``'s permanent delete Drive refused
    (``refused``) was made a trash. In a shared drive (``drive_id``) that is a Content
    manager's role; in My Drive no role explains it (its owner may delete), and the warning
    spoke of a shared drive and roles the user does not have (attacksync34)."""
    with _TRASH_WARNED_LOCK:
        if scope in _TRASH_WARNED:
            return
        _TRASH_WARNED.add(scope)
    if drive_id is None:
        failure = answers.failure_of(refused.__cause__ or refused)
        log.warning("%s could not be deleted permanently: Drive refused it in My Drive (%s), "
                    "where its owner may delete it. Moved to the trash instead (Drive empties "
                    "it after 30 days; until then it counts toward the storage quota), as is "
                    "any item Drive refuses so for the rest of this run. Check that this "
                    "account owns the files of the folder, or pass --use-trash to ask for "
                    "the trash.", where,
                    f"HTTP {failure.label}" if failure is not None else "HTTP 403")
        return
    log.warning("%s could not be deleted permanently: in a shared drive that needs the "
                "Manager role (organizer), and this account is a Content manager "
                "(fileOrganizer). Moved to the shared drive's trash instead (Drive empties "
                "it after 30 days), here and for the rest of this run. Ask a Manager of the "
                "shared drive for the Manager role to delete permanently, or pass "
                "--use-trash to ask for the trash.", where)


def say_unanswered(names: list[str]) -> None:
    """One line for the removals of ``names`` sent whose answer the push (the prune, the
    mirror: :mod:`drivestage.command`) stopped before having (a guard that refused their
    retry, a Ctrl-C): Drive may have done them, and no "deleted" line says so
    (attackguard40: three items went unsaid)."""
    if not names:
        return
    shown = names[:10] + ([f"{len(names) - 10} more"] if len(names) > 10 else [])
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
    log.warning("the removal of %s was sent, and the %s stopped before %s answer came: "
                "%s may be gone", listed, stopping(), "its" if len(names) == 1 else "their",
                "it" if len(names) == 1 else "they")


def not_removed(where: str, refused: DriveStageError, again: DriveStageError,
                shared_drive: Optional[str]) -> DriveStageError:
    """Why ``where`` could be neither deleted (``refused``) nor trashed (``again``): in a
    shared drive both refused means a missing role (a Contributor's), not a missing access."""
    if isinstance(again, WebPageRefusalError):
        return again    # the trash was stopped on the way: that says what to do
    if not shared_drive or not answers.drive_refused(again):
        return refused
    return PermissionDeniedError(
        f"{where} cannot be removed: in a shared drive, moving an item to the trash needs the "
        "Content manager role (fileOrganizer) and deleting it the Manager role (organizer), and "
        "this account has neither. Ask a Manager of the shared drive for one, or keep "
        "retention (--keep-last, --max-bytes...) off for this folder.")
