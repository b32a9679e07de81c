"""``drivestage runs forget``: a run folder is no run folder any more.

A run folder (:mod:`drivestage.run_folders`) is left to its run's own push by every push of
a folder above it, ``--delete`` included, on every machine: its mark on Drive says so where
this machine's record is gone. A finished run that is to go with the folder above needs
the way out: this clears both.
"""
from __future__ import annotations

from typing import Optional

import click

from drivestage.cli.group import cli
from drivestage.cli.options import drive_options, missing_is_usage, stops_as_ctrl_c
from drivestage.errors import UsageError


@cli.group(name="runs")
def runs_group() -> None:
    """Run folders: the Drive folders a training run's push keeps (its checkpoints are left
    to it by every push of a folder above)."""


@runs_group.command(name="forget")
@click.argument("dest")
@drive_options
@stops_as_ctrl_c
def forget_cmd(dest: str, api_root: Optional[str], credentials: Optional[str]) -> None:
    """DEST (a drive: folder, or a local one) is no run folder any more: its marks (on Drive;
    in a local folder its file .drivestage/run-folder) are cleared and this machine's record
    of it removed. A push of a folder above it then treats it as any
    other folder (`--delete` removes it where SRC lacks it). Its run marks it again when it
    starts anew (a run still going on another machine keeps that machine's record and does
    not mark it again before then). A mark set through another OAuth client (Colab's, say)
    only `runs forget` there clears."""
    from drivestage import run_folders
    from drivestage.local_marks import MARK
    from drivestage.localdir import LocalDirStore
    from drivestage.paths import STATE_DIR, printable, refuse_bad_place
    from drivestage.remote import open_store

    refuse_bad_place("DEST", dest)
    with missing_is_usage(dest):
        store, path = open_store(dest, api_root=api_root, credentials=credentials)
        folder = store.resolve(path)
    where = printable(store.describe(folder))
    if not folder.is_dir:
        raise UsageError(f"{where} is a file, not a folder; runs forget takes a run folder")
    marked, recorded = run_folders.forget(store, folder)
    # A local folder's mark is a file in it (drivestage.local_marks): "its mark on Drive
    # cleared" named a Drive that was never asked (attacknew34).
    local = isinstance(store, LocalDirStore)
    if not (marked or recorded):
        marks = "" if local else "no mark on Drive, "
        click.echo(f"{where} was no run folder: {marks}no record on this machine")
        return
    cleared = f"its mark ({STATE_DIR}/{MARK}) removed" if local else "its mark on Drive cleared"
    done = [what for what, was in ((cleared, marked),
                                   ("this machine's record of it removed", recorded)) if was]
    click.echo(f"{where} is no run folder any more: {', '.join(done)}")


__all__ = ["runs_group"]
