"""Drive shortcuts, followed as rclone follows them.

A shortcut (``application/vnd.google-apps.shortcut``) has no bytes of its own: its
``shortcutDetails`` name a target (``targetId``, ``targetMimeType``, ``targetResourceKey``).
:func:`follow` fetches the target and gives the entry the shortcut stands for: a folder
reached through it (the target folder, under the shortcut's name), a file (the shortcut's id,
the target's bytes, size and md5), or a dangling entry (``unreadable``: the target is gone,
no longer shared, or in the trash, where its message says who can take it out). Drive makes
no shortcut to a shortcut; a server that does is followed a few hops, and a loop is an error.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from drivestage.drive.resources import (SHORTCUT_MIME, DriveEntry, ResourceKeys,
                                        entry_from_resource, is_shortcut, is_trashed,
                                        restorer)
from drivestage.errors import MalformedAnswerError, NotFoundError, ShortcutCycleError

#: Shortcuts followed one after another at most.
_MAX_HOPS = 8


def follow(res: Mapping[str, Any], shortcut: DriveEntry, where: str,
           get: Callable[[str, str], Mapping[str, Any]], keys: ResourceKeys) -> DriveEntry:
    """The entry a shortcut stands for: its target under the shortcut's name, or a
    dangling entry (``unreadable``) when the target is gone or not shared any more."""
    seen = {shortcut.id}
    details: Mapping[str, Any] = res.get("shortcutDetails") or {}
    for _hop in range(_MAX_HOPS):
        target_id = details.get("targetId")
        if not isinstance(target_id, str) or not target_id:
            raise MalformedAnswerError(f"{where}: the server answered a shortcut without a "
                                       "target id; is --api-root a Drive API?")
        if target_id in seen:
            raise ShortcutCycleError(f"{where} is a shortcut that leads back to itself "
                                     f"(through id {target_id}); remove it on Drive")
        seen.add(target_id)
        key = details.get("targetResourceKey")
        keys.learn(target_id, key if isinstance(key, str) else None)
        try:
            target = get(target_id, f"follow the shortcut {where}")
        except NotFoundError:
            return _dangling(shortcut, target_id, (
                f"{where} is a shortcut to an item that is gone or no longer shared with "
                f"you (target id {target_id}). Remove the shortcut on Drive, or ask the owner "
                "to share the item with you again."),
                "(a shortcut to an item that is gone or no longer shared with you)")
        if is_trashed(target):
            # Drive answers for a trashed item (labels.trashed): nothing was unshared, and
            # "ask to share it again" did nothing. Who may restore it: its canUntrash.
            who = restorer(target)
            advice = "restore it from the trash" if who is None else \
                f"only {who} can take it out: ask them to restore it"
            return _dangling(shortcut, target_id, (
                f"{where} is a shortcut to an item in the trash (target id {target_id}); "
                f"{advice}, or remove the shortcut on Drive"),
                "(a shortcut to an item in the trash)")
        if not is_shortcut(target):
            break
        details = target.get("shortcutDetails") or {}
    else:
        raise ShortcutCycleError(f"{where}: more than {_MAX_HOPS} shortcuts in a row; "
                                 "point it at the item itself")
    found = entry_from_resource(target, where)
    if found.is_dir:
        return dataclasses.replace(found, name=shortcut.name, parent_id=shortcut.parent_id,
                                   parent_ids=shortcut.parent_ids,
                                   shortcut_id=shortcut.id)
    return dataclasses.replace(found, id=shortcut.id, name=shortcut.name,
                               parent_id=shortcut.parent_id, parent_ids=shortcut.parent_ids,
                               target_id=found.id,
                               removable=shortcut.removable)


def _dangling(shortcut: DriveEntry, target_id: str, why: str, mark: str) -> DriveEntry:
    """The shortcut as an entry that leads nowhere a pull can follow: ``why`` its message,
    ``mark`` the same in a few words for ``drivestage ls``."""
    return dataclasses.replace(shortcut, is_dir=False, has_content=False, kind=SHORTCUT_MIME,
                               target_id=target_id, unreadable=why, no_download_mark=mark)
