"""``drivestage unread list`` / ``unread forget``: the folders push could not read, remembered.

A folder of SRC a push could not read (a FUSE mount whose program ended) is remembered in the
state folder (:mod:`drivestage.unread_memory`), and every later push, mirror or trainer keeps
its copies on Drive while it reads empty, gone or as the disk beneath its mount. ``push
--emptied PATH`` clears one record as part of one push; a mirror or a trainer cannot be given
that, a record of a machine that is no more (a recreated container's hostname, sharing the
state folder) is honoured for good, and nothing showed what was remembered. ``unread list``
shows each record, ``unread forget`` clears them (a running mirror reads the memory anew each
period).
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Optional

import click

from drivestage.cli.group import cli
from drivestage.cli.options import stops_as_ctrl_c
from drivestage.errors import UsageError

if TYPE_CHECKING:
    from drivestage.unread_records import Record


@cli.group(name="unread")
def unread_group() -> None:
    """Folders a push could not read, remembered in the state folder (unread.json): every
    push keeps their copies on Drive while one reads empty, or while the mount it was on is
    not mounted."""


def _line(r: Record) -> str:
    from drivestage.paths import printable
    from drivestage.unread import strerror

    # (a damaged record's date: nan, or past year 9999, ended the command in a traceback)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(r.t)) if 0 < r.t < 253402300800 \
        else "date unknown"
    mount = "" if not r.mount else f", on the mount at {printable(r.mount)}" + (
        f" ({r.fs})" if r.fs else "") + (
        "" if r.mounted is None else " (mounted)" if r.mounted else
        f" (the mount at {printable(r.outer)} it is inside is " + (
            f"another now: {r.other})" if r.other else "not mounted now)") if r.outer else
        f" (another mount below it now: {r.other} at {printable(r.other_at)})" if r.other_at
        else f" (another mount there now: {r.other})" if r.other else " (not mounted now)")
    # (the host as the file holds it, printable: a name with a line end or an escape wrote
    # a line of its own to the terminal: attack51)
    return f"{printable(r.path)}: {printable(r.host)}, {when}: {strerror(r.errno)}{mount}"


@unread_group.command(name="list")
@stops_as_ctrl_c
def list_cmd() -> None:
    """One line a record: the folder, the machine that could not read it, when (UTC), why,
    and the mount it was on."""
    from drivestage import unread_records

    found = unread_records.records()
    for r in found:
        click.echo(_line(r))
    if not found:
        click.echo("no folder is remembered as unread")


@unread_group.command(name="forget")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--host", metavar="NAME", help="Only the records of machine NAME (every one of "
              "them where no PATH is named): a machine that is no more.")
@stops_as_ctrl_c
def forget_cmd(paths: tuple[str, ...], host: Optional[str]) -> None:
    """Forget the records of each PATH (every machine's, or --host NAME's): the next push
    takes the folder as it reads, and --delete removes its copies on Drive that it lacks.
    Use it where a folder was emptied on purpose and a mirror or trainer pushes it (a push
    has --emptied PATH)."""
    from drivestage import unread_records
    from drivestage.paths import refuse_empty

    # ("$DIR" unset: "" was the working folder, whose record went, and the next push --delete
    # trashed what it kept on Drive: attack52)
    for path in paths:
        refuse_empty("PATH", path, "the folder whose record to forget (drivestage unread list "
                     "shows them)")
    if host is not None:
        refuse_empty("--host", host, "the name of the machine whose records to forget "
                     "(drivestage unread list shows them)")
    if not paths and host is None:
        raise UsageError("name the folders to forget (PATH...), or --host NAME for every "
                         "record of a machine (drivestage unread list shows them)")
    gone = unread_records.forget([os.path.abspath(p) for p in paths], host)
    for r in gone:
        click.echo(f"forgot {_line(r)}")
    if not gone:
        click.echo("no such record (drivestage unread list shows them)")

__all__ = ["unread_group"]
