"""CLI commands: ``pull``, ``ls``, ``quota`` and ``auth login`` (registered on the drivestage group).

Thin over :mod:`drivestage.stage`, :mod:`drivestage.drive.store` and :mod:`drivestage.drive.auth`;
errors become one ``Error: ...`` line in :mod:`drivestage.cli`.
"""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Optional

import click

from drivestage.cli.group import cli
from drivestage.cli.options import (SIZE_HELP, Size, drive_options, missing_is_usage,
                                     stops_as_ctrl_c)
from drivestage.pool import MAX_JOBS

if TYPE_CHECKING:  # (the commands import the library when they run: a fast --help)
    from drivestage.stage_file import PullResult
    from drivestage.store import RemoteEntry, RemoteStore

PULL_EPILOG = """\b
Examples:
  drivestage pull drive:VOC_datasets/VOC07+12+test.zip ./data --extract
  drivestage pull drive:id:1AbCdEf ./data --json
  drivestage pull drive:Datasets/VOC ./data --extract
  drivestage pull drive:shared/Team/weights/yolov4_tiny.pth ./model_data
  drivestage pull "https://drive.google.com/file/d/1AbCdEf/view?usp=sharing" ./data
  drivestage pull drive:shared-with-me/VOC_datasets ./data --extract

\b
SRC is drive:a/b/c.zip (My Drive), drive:id:<FILE_ID>[:<RESOURCE_KEY>],
drive:shared/<drive>/a/b, drive:shared-with-me/<name>/a, or a Drive sharing link
(https://drive.google.com/file/d/<ID>/view?usp=sharing, .../drive/folders/<ID>, with or
without resourcekey=); shortcuts are followed. A plain path reads from a local folder (e.g.
a Drive mount). The file lands in DEST/<name>; a rerun
on an intact staged copy does nothing. With --extract, a local zip or tar (not on a Drive
mount: /kaggle/input/...) is extracted from where it lies and verified, not copied. A folder lands in DEST/<name>/ with its whole tree;
with --extract every .zip/.tar/.tar.gz/.tgz in it is extracted where it lies. A path two
archives hold gets the bytes of the one later in tree order (a folder's files sorted by
name, character by character: capitals first, 10.zip before 2.zip; then its subfolders'),
as unzip a.zip; unzip b.zip leaves it, whatever --jobs or the network do; an archive with a
member where the folder has a file or folder of that name is refused. A file Drive will
not serve (quota, malware flag, md5) stops no other: the rest comes (archives after a failed
one downloaded, extracted at the next pull), then exit 1 naming each with its --exclude.
Exit codes: 0 success, 1 error, 2 usage error, 130 interrupted (Ctrl-C); SIGTERM (143) and
SIGHUP (129) end it as a Ctrl-C does: no temporary folder left, the partial kept for the rerun.
"""


#: The smallest --chunk-size: a smaller piece costs more in its request than it carries.
MIN_CHUNK = 64 << 10


class _ChunkSize(Size):
    """``--chunk-size``: 0 (or 0.4, which is 0 bytes) meant the default without a word, and
    a few bytes meant a request per few bytes: both a usage error, naming the bound."""

    def convert(self, value: Any, param: Optional[click.Parameter],
                ctx: Optional[click.Context]) -> int:
        size = super().convert(value, param, ctx)
        if size < MIN_CHUNK:
            self.fail(f"{value} is less than 64KiB, the smallest piece worth a request of "
                      "its own; give 64KiB or more, or leave it out for one request per "
                      "stream", param, ctx)
        return size


#: The largest --reserve: 1 EiB, more than any one disk holds.
MAX_RESERVE = 1 << 60


class _Reserve(Size):
    """``--reserve``: a size larger than any disk (``999999999999999999999999TB``) could
    never be kept free, and was said as ``keeping 909494701772928276496384.0 TiB in
    reserve`` at the first space check (leftovers39): a usage error, naming it as typed."""

    def convert(self, value: Any, param: Optional[click.Parameter],
                ctx: Optional[click.Context]) -> int:
        size = super().convert(value, param, ctx)
        if size > MAX_RESERVE:
            self.fail(f"{value} is more than any disk holds (1 EiB at most); give the room "
                      "to keep free on DEST's disk, e.g. 5GB", param, ctx)
        return size


@cli.command(epilog=PULL_EPILOG)
@click.argument("src")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("-x", "--extract", is_flag=True,
              help="Extract the zip / tar / tar.gz into DEST after verifying it.")
@click.option("--remove-archive", is_flag=True,
              help="With --extract: remove each downloaded archive once its members are "
                   "extracted and verified, so the data takes its room once (the file on "
                   "Drive stays). A rerun finds the members in place and downloads the "
                   "archive again only if one is gone or changed. A local archive extracted "
                   "where it lies, SRC itself, and an archive in a Google Drive mount are "
                   "never removed.")
@click.option("-j", "--jobs", type=click.IntRange(1, MAX_JOBS), default=None,
              help="Parallel download streams per file (default: as many as measuring "
                   "finds worth it, up to 8); a folder pull fetches this many small files at "
                   "once (default 4).")
@click.option("-f", "--force", is_flag=True,
              help="Stage again even if already staged; replace files of yours in the way "
                   "(a file at the name, or at an archive member's path).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--reserve", type=_Reserve(), default="0",
              help="Keep this much local disk free (e.g. 5GB); checked before downloading "
                   f"and before extracting. {SIZE_HELP}.")
@click.option("--retries", type=click.IntRange(1, 100), default=None,
              help="Attempts per Drive request before giving up (default 8, or "
                   "$DRIVESTAGE_RETRY_ATTEMPTS).")
@click.option("--include", multiple=True, metavar="GLOB",
              help="Folder pulls: only files matching GLOB (path inside the folder, or name); "
                   "repeatable. Globs that leave no file stop the pull (exit 1).")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Folder pulls: skip files and folders matching GLOB; repeatable.")
@click.option("--chunk-size", type=_ChunkSize(), default=None, hidden=True,
              help="Most bytes per ranged request, at least 64KiB (default: one request "
                   "per stream).")
@click.option("--acknowledge-abuse", is_flag=True,
              help="Download a file Drive flagged as malware or spam anyway (Drive honours "
                   "this only for the file's owner or a Manager of its shared drive).")
@drive_options
@stops_as_ctrl_c
def pull(src: str, dest: str, extract: bool, remove_archive: bool, jobs: Optional[int],
         force: bool, quiet: bool,
         as_json: bool, reserve: int, retries: Optional[int], include: tuple[str, ...],
         exclude: tuple[str, ...], chunk_size: Optional[int], acknowledge_abuse: bool,
         api_root: Optional[str], credentials: Optional[str]) -> None:
    """Download SRC (a file or a whole folder) into DEST: resumable, parallel, verified with
    Drive's md5 or SHA-256."""
    from drivestage.checksums import measure_soon
    from drivestage.cli.group import as_program
    from drivestage.heap import collect_in_bulk
    measure_soon()  # on the other core while the Drive client's modules load
    if as_program():  # this pull is the whole process (heap.bulk)
        collect_in_bulk()
    from drivestage import paths
    from drivestage.errors import UsageError
    from drivestage.remote import open_store
    from drivestage.sizes import format_size
    from drivestage.stage import pull as do_pull
    from drivestage.stage_tree import FolderPullResult
    from drivestage.stderr_tail import say

    paths.refuse_empty("SRC", src, "a drive: path, a Drive link or a local path")
    paths.refuse_empty("DEST", dest, "the local folder to pull into (e.g. ./data)")
    paths.refuse_windows_path("DEST", dest)
    if not paths.is_drive(src):
        paths.refuse_windows_path("SRC", src)
    if remove_archive and not extract:
        raise UsageError("--remove-archive removes the archive once --extract has "
                         "extracted it; add -x (--extract), or leave --remove-archive "
                         "out to keep the archive")
    store = None
    if acknowledge_abuse:
        if not paths.is_drive(src):
            paths.refuse_web_address(src)  # a web address is not "a local path"
            raise UsageError(f"--acknowledge-abuse is for files on Google Drive; "
                             f"{src!r} is a local path")
        store, _path = open_store(src, api_root=api_root, credentials=credentials,
                                  acknowledge_abuse=True)
    # (While progress bars show, log lines go through tqdm: see drivestage.stage. A rerun
    # that finds everything staged shows none and never imports tqdm.)
    made = not os.path.lexists(os.path.expanduser(dest))   # DEST made by this pull
    with missing_is_usage(src):
        result = do_pull(src, dest, extract=extract, jobs=jobs, force=force, quiet=quiet,
                         store=store, api_root=api_root, credentials=credentials,
                         reserve=reserve, chunk_size=chunk_size, retries=retries,
                         include=include, exclude=exclude, remove_archive=remove_archive)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=1))
    else:
        click.echo(paths.printable(result.path))
    if made and not extract and not isinstance(result, FolderPullResult):
        _warn_named_as_file(src, dest, result)
    if quiet:
        return
    where = f"{paths.printable(result.src)} -> {paths.printable(result.path)}"
    if isinstance(result, FolderPullResult):
        counts = ", ".join(f"{n} {_FOLDER_ACTIONS.get(a, a)}"
                           for a, n in sorted(result.actions().items()))
        extra = _members_said(result.files)
        gone = sum(f.archive_removed for f in result.files)
        if gone:
            extra += f", {gone} archive{'' if gone == 1 else 's'} removed"
        skipped = f", {len(result.skipped)} skipped (no binary content)" if result.skipped else ""
        n = len(result.files)
        say(f"{where}: {n} file{'' if n == 1 else 's'} "
            f"({counts or 'none'}{skipped}), {format_size(result.size)}{extra}, "
            f"{result.seconds:.1f}s")
        return
    what = {"cached": "already staged",
            "verified": f"already there, {result.checksum or 'md5'} verified",
            "extract": "extracted", "resume": "resumed and verified",
            "update": "updated and verified", "download": "downloaded and verified"}
    if os.path.dirname(result.path) != result.dest:  # a local archive, extracted where it lies
        where = (f"{paths.printable(result.src)} -> {paths.printable(result.dest)} "
                 "(extracted from where it lies, not copied)")
        what.update(extract="extracted and md5 verified", verified="md5 verified",
                    update="updated and md5 verified")
    if not result.md5:   # Drive lists no md5 for it (a binary file stored long ago)
        what.update(resume="resumed", update="updated", download="downloaded")
        if result.checksum:
            what = {k: f"{v} and {result.checksum} verified" if k in ("resume", "update",
                                                                    "download") else v
                    for k, v in what.items()}
    # The checksum that verified the bytes: Drive's md5 was named for bytes verified by their
    # SHA-256, an md5 never checked (a server whose md5 lied).
    summed = "no md5 on Drive" if not result.md5 else f"sha256 {result.sha256}" \
        if result.sha256 else f"md5 {result.md5}"
    extra = _members_said([result]) + (", archive removed" if result.archive_removed else "")
    say(f"{where}: {what.get(result.action, result.action)} "
        f"({format_size(result.size)}, {summed}{extra}, {result.seconds:.1f}s)")


def _warn_named_as_file(src: str, dest: str, result: PullResult) -> None:
    """``pull drive:runs/exp/best.pt ./weights/best.pt`` (DEST typed as ``cp``'s, a file's
    name) made the folder ``weights/best.pt/`` holding ``best.pt``, as documented (a file
    lands in DEST/<name>, as rclone's copy): a script that then loaded ``weights/best.pt``
    failed far from the cause ("is a folder"). Said once, where this pull made DEST and its
    last name is the file's; a DEST written as a folder (``weights/best.pt/``) is not."""
    import logging

    from drivestage.paths import printable
    from drivestage.shell_words import shell_word

    if dest.endswith(os.sep) or os.path.dirname(result.path) != result.dest \
            or os.path.basename(result.dest) != os.path.basename(result.path):
        return
    typed = os.path.normpath(os.path.expanduser(dest))   # (a quoted ~ is no home)
    logging.getLogger("drivestage.cli.pull").warning(
        "DEST %s was not there: pull made it a folder and put the file in it, at %s (a file "
        "lands in DEST/<name>); to have the file at %s itself, give the folder above it as "
        "DEST: rm -r %s && drivestage pull %s %s", printable(typed), printable(result.path),
        printable(typed), shell_word(typed), shell_word(src),
        shell_word(os.path.dirname(typed) or "."))


def _members_said(files: list[PullResult]) -> str:
    """The summary's word on members: those extracted by this run, and those of archives
    found staged (a rerun that found all staged said they were extracted)."""
    now = sum(f.members - f.members_kept for f in files
              if f.extracted and f.action != "cached")
    before = sum(f.members if f.action == "cached" else f.members_kept for f in files
                 if f.extracted)
    said = [f"{now} member{'' if now == 1 else 's'} extracted"] if now else []
    if before:
        noun = "" if said else f" member{'' if before == 1 else 's'}"
        said.append(f"{before}{noun} already staged")
    return "".join(", " + part for part in said)


_FOLDER_ACTIONS = {"cached": "already staged", "verified": "already there (verified)",
                   "extract": "extracted", "resume": "resumed", "update": "updated",
                   "download": "downloaded"}


def _iso(ts: float) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@cli.command(name="ls")
@click.argument("path", default="drive:")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@drive_options
@stops_as_ctrl_c
def ls(path: str, as_json: bool, api_root: Optional[str], credentials: Optional[str]) -> None:
    """List a Drive folder (or show one file): name, size, md5, modified (UTC)."""
    from drivestage.paths import printable, refuse_bad_place

    refuse_bad_place("PATH", path)
    with missing_is_usage(path):   # (a local path that is not there: exit 2, hint and all)
        store, entry = _resolved(path, api_root, credentials)
    entries = sorted(store.list(entry), key=lambda e: (not e.is_dir, e.name)) \
        if entry.is_dir else [entry]
    if as_json:
        click.echo(json.dumps([{"name": e.name, "id": e.id, "is_dir": e.is_dir,
                                "size": e.size, "md5": e.md5, "modified": _iso(e.modified),
                                **({"read_only": e.read_only is not None} if e.is_dir else
                                   {"downloadable": e.has_content and not e.unreadable
                                    and e.no_download is None})}
                               for e in entries], indent=1))
        return
    for e in entries:
        name = printable(e.name) + ("/" if e.is_dir else "")
        if e.unreadable:  # a dangling shortcut: its target gone, unshared or in the trash
            name += "  " + (e.no_download_mark or
                            "(a shortcut to an item that is gone or no longer shared with you)")
        elif e.no_download:  # what a pull of it would fail on, seen before trying
            name += "  " + (e.no_download_mark or "(cannot be downloaded: pull it to see why)")
        elif e.read_only:
            name += "  (shared with you read-only)"
        size = "-" if e.is_dir else str(e.size)
        click.echo(f"{size:>14}  {e.md5 or '-':32}  {_iso(e.modified):20}  {name}")


def _resolved(path: str, api_root: Optional[str],
              credentials: Optional[str]) -> "tuple[RemoteStore, RemoteEntry]":
    """``ls``'s PATH, opened and looked up; ``ls VOC_datasets``, typed as in a shell, says how
    a path on Drive is written, as pull does (a local path that is not there)."""
    from drivestage.errors import NotFoundError
    from drivestage.paths import drive_hint, is_drive
    from drivestage.remote import open_store

    try:
        store, rel = open_store(path, api_root=api_root, credentials=credentials)
        return store, store.resolve(rel)
    except NotFoundError as exc:
        hint = None if is_drive(path) or os.path.lexists(os.path.expanduser(path)) \
            else drive_hint(path, "folder")
        if hint is None:
            raise
        raise NotFoundError(f"{exc}; {hint}") from exc


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@drive_options
@stops_as_ctrl_c
def quota(as_json: bool, api_root: Optional[str], credentials: Optional[str]) -> None:
    """Show the Drive storage quota: used / total / trash (the trash counts toward it)."""
    from drivestage.drive import connect
    from drivestage.sizes import format_size

    q = connect(api_root=api_root, credentials=credentials).quota()
    if as_json:
        click.echo(json.dumps({"used": q.used, "total": q.total, "trash": q.trash,
                               "free": q.free, "other": q.other}))
        return
    total = format_size(q.total) if q.total is not None else "unlimited"
    pct = f"{100 * q.used / q.total:.0f}%" if q.total else ""
    other = f"Gmail and Google Photos {format_size(q.other)} of it" if q.other else ""
    pct = f" ({'; '.join(p for p in (pct, other) if p)})" if pct or other else ""
    free = f", {format_size(q.free)} free" if q.free is not None else ""
    click.echo(f"used {format_size(q.used)} of {total}{pct}, {format_size(q.trash)} in the "
               f"trash{free}")


@cli.group(name="auth")
def auth_group() -> None:
    """Log in to Google Drive."""


@auth_group.command(name="login")
@click.option("--client-secrets", required=True, metavar="FILE",
              help="The OAuth client secret JSON (Google Cloud console, type Desktop app).")
@click.option("--token-file", metavar="PATH", default=None,
              help="Where to save the token (default ~/.config/drivestage/token.json, "
                   "or $DRIVESTAGE_TOKEN_FILE).")
@stops_as_ctrl_c
def login(client_secrets: str, token_file: Optional[str]) -> None:
    """Console login for machines without a browser; the token is saved with mode 0600."""
    from drivestage.drive import login as console
    from drivestage.stop_signals import Stopped, taken

    def ask(prompt: str) -> str:
        try:
            return click.prompt(prompt.rstrip(": "), err=True)
        except click.Abort:
            # click's prompt turns every KeyboardInterrupt into Abort, a SIGTERM's Stopped
            # too: it was "no code was pasted", or killed at once before (lefts43).
            stop = taken()
            if stop is not None:
                raise Stopped(stop) from None
            # The input ended (nohup, `< /dev/null`, a pipe): click's "Aborted!", exit 1,
            # said nothing of why (ux35). A Ctrl-C at a terminal stays that.
            if sys.stdin is None or not sys.stdin.isatty():
                from drivestage.errors import AuthError

                raise AuthError("no code was pasted: the input ended before one came (no "
                                "terminal to paste into); run `drivestage auth login` again "
                                "in a terminal") from None
            raise

    console.login(client_secrets, token_file=token_file, ask=ask,
               say=lambda text: click.echo(text, err=True))


__all__ = ["pull", "ls", "quota", "auth_group"]
