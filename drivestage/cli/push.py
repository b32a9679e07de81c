"""CLI commands: push, prune, dedupe (registered on the drivestage group), and the options
and helpers ``mirror`` (:mod:`drivestage.cli.mirror`) shares with them."""
from __future__ import annotations

import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

import click

from drivestage.cli.group import cli
from drivestage.cli.options import (SIZE_HELP, drive_options, missing_is_usage,
                                     stops_as_ctrl_c)
from drivestage.errors import DedupeConflictError, PolicyError, UsageError
from drivestage.pool import MAX_JOBS

if TYPE_CHECKING:
    from drivestage.paths import StorePath
    from drivestage.retention import RetentionPolicy
    from drivestage.state import Md5Cache
    from drivestage.store import RemoteStore
    from drivestage.upload_tree import PushResult

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)


#: ``--use-trash``'s help: what it decides for in push and mirror, and in prune. It said
#: "Move deleted files to the Drive trash", which read as covering --delete-permanently's
#: files too (leftovers41); the two choose for different files, and the pair is kept.
_USE_TRASH = {
    "push": "Move the checkpoints the retention policy prunes, and the old copy of a "
            "checkpoint replaced, to the Drive trash (it counts toward the quota) instead of "
            "deleting them permanently. Files not in SRC follow --delete (to the trash) or "
            "--delete-permanently (gone for good), whatever this says.",
    "prune": "Move the checkpoints the policy prunes to the Drive trash (it counts toward "
             "the quota) instead of deleting them permanently."}


def _policy_options(fn: F, command: str = "push") -> F:
    """The retention options shared by push, mirror and prune (``command``: whose help)."""
    options = [
        click.option("--keep-last", type=int, metavar="N", help="Keep the N newest checkpoints."),
        click.option("--keep-best", type=int, metavar="K",
                     help="Keep the K best checkpoints by --metric (read from sidecars)."),
        click.option("--metric", metavar="NAME", help="Metric for --keep-best (e.g. map50)."),
        click.option("--mode", type=click.Choice(["min", "max"]), default=None,
                     help="Whether a higher (max, default) or lower (min) metric is better."),
        click.option("--keep-every", type=int, metavar="E",
                     help="Keep checkpoints whose epoch is a multiple of E."),
        click.option("--keep-runs", type=int, metavar="N",
                     help="Keep the checkpoints of the N most recent training runs only (runs are "
                          "named in sidecars); by default every run keeps its newest."),
        click.option("--max-bytes", metavar="SIZE",
                     help=f"Budget for the checkpoints in DEST (e.g. 2GB, 500MiB); {SIZE_HELP}."),
        click.option("--pattern", metavar="REGEX",
                     help="Which names are checkpoints (a regex; default: epoch_NNN with a "
                          "weights suffix, e.g. epoch_004.pt, .pth, .ckpt, .bin, .safetensors); "
                          "other files are never touched."),
        click.option("--use-trash", is_flag=True, help=_USE_TRASH[command]),
        click.option("--protect", multiple=True, metavar="NAME",
                     help="Never delete this file (e.g. the checkpoint a run resumed from)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _prune_policy_options(fn: F) -> F:
    """:func:`_policy_options` with prune's help."""
    return _policy_options(fn, "prune")


def _transfer_options(fn: F) -> F:
    options = [
        click.option("--include", multiple=True, metavar="GLOB",
                     help="Only push files matching GLOB (path or name); repeatable."),
        click.option("--exclude", multiple=True, metavar="GLOB",
                     help="Skip files and folders matching GLOB; repeatable."),
        click.option("--delete", is_flag=True,
                     help="Move remote files and folders that are not in SRC to the Drive "
                          "trash (off by default). Refused into the top of a drive, and when it "
                          "would remove more than --max-delete items."),
        click.option("--delete-permanently", is_flag=True,
                     help="Like --delete, but delete them permanently instead of moving them "
                          "to the trash (also with --use-trash, which is for what the policy "
                          "prunes)."),
        click.option("--max-delete", type=click.IntRange(min=0), metavar="N",
                     help="The most items --delete may remove (a folder counts with what it "
                          "holds); default: twice the files in SRC plus 10."),
        click.option("--follow-symlinks", is_flag=True,
                     help="Follow links that lead outside SRC or to folders (skipped and "
                          "reported by default)."),
        click.option("--chunk-size", metavar="SIZE",
                     help="Upload chunk size, a multiple of 256KiB (default 64MiB; memory use does "
                          "not grow with it: chunks are streamed from the file)."),
        # IntRange: the library's check named its keyword (`jobs=0 is invalid`), not the flag;
        # at most MAX_JOBS, as pull's (`--jobs 100000` was taken as it came: leftovers39).
        click.option("--jobs", "-j", type=click.IntRange(1, MAX_JOBS), metavar="N", default=4,
                     show_default=True,
                     help="Files uploaded in parallel."),
        click.option("--force", is_flag=True,
                     help="Replace checkpoints on Drive that belong to another training run "
                          "(their sidecar names another run). By default they are left as "
                          "they are, the rest is pushed, and the command exits 1 naming them."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _policy(opts: dict[str, Any]) -> "RetentionPolicy":
    from drivestage.retention import RetentionPolicy

    if opts.get("metric") and opts.get("keep_best") is None:
        raise PolicyError("--metric is only used with --keep-best K; add --keep-best 1")
    try:
        return RetentionPolicy.from_options(
            keep_last=opts.get("keep_last"), keep_best=opts.get("keep_best"),
            metric=opts.get("metric"), mode=opts.get("mode"), keep_every=opts.get("keep_every"),
            max_bytes=opts.get("max_bytes"), pattern=opts.get("pattern"),
            keep_runs=opts.get("keep_runs"))
    except PolicyError as exc:
        raise PolicyError(_as_flags(str(exc))) from exc


def _as_flags(text: str) -> str:
    """The policy's messages name its Python keywords (``keep_last=0``); the user typed flags
    (``--keep-last 0``)."""
    import re

    return re.sub(r"\b(keep_last|keep_best|keep_every|keep_runs|max_bytes|pattern)=('[^']*'|\S+)",
                  lambda m: f"--{m.group(1).replace('_', '-')} {m.group(2)}", text)


def _chunk(value: Optional[str]) -> Optional[int]:
    if value is None:
        return None
    from drivestage.sizes import parse_size
    from drivestage.drive.upload import CHUNK_UNIT

    try:
        size = parse_size(value)
    except PolicyError:
        raise UsageError(f"--chunk-size {value!r} is not a size; use e.g. 8MiB or 16MiB")
    if size <= 0 or size % CHUNK_UNIT:
        raise UsageError(f"--chunk-size {value} is not a multiple of 256KiB; use e.g. "
                         f"{max(1, size // CHUNK_UNIT) * 256}KiB")
    return size


def _progress_bar(total: int, label: str) -> Any:
    """A tqdm byte bar on stderr (disabled when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024,
                desc=label, leave=False, disable=None)


def _summary(result: "PushResult") -> str:
    from drivestage.sizes import format_size

    parts = [f"{len(result.uploaded)} uploaded ({format_size(result.bytes_sent)})",
             f"{result.unchanged} unchanged"]
    if result.skipped_by_policy:
        parts.append(f"{len(result.skipped_by_policy)} not sent (the policy deletes them)")
    if result.pruned:
        # Orphan sidecars and lone autosaves by name (drivestage.orphans, .lone_autosaves): a
        # deletion of one file of a pair without the other is one a user should be able to
        # see, and find in the trash.
        retired = [_retired(result.pruned, kind, what) for kind, what in (
            ("sidecar", "orphan sidecar"), ("autosave", "lone autosave"))]
        said = "; ".join(r for r in retired if r)
        parts.append(f"{len(result.pruned)} pruned" + (f" ({said})" if said else ""))
    if result.deleted:   # (items, as the --delete lines count them)
        parts.append(f"{result.deleted_items or len(result.deleted)} deleted (not local)")
    if result.replaced_duplicates:
        parts.append(f"{len(result.replaced_duplicates)} duplicate names repaired")
    if result.other_run:
        parts.append(f"{len(result.other_run)} left (another run's on Drive)")
    if result.unknown_run:   # (its sidecar there flagged by Drive: other_runs)
        parts.append(f"{len(result.unknown_run)} left (whose on Drive cannot be told)")
    if result.unread:   # (their copies on Drive kept: drivestage.unread)
        parts.append(f"{len(result.unread)} not read")
    if result.blocked:   # (a folder on Drive has the name: drivestage.name_blocked)
        parts.append(f"{len(result.blocked)} not sent (a folder has the name)")
    return ", ".join(parts)


def _retired(pruned: Any, kind: str, what: str) -> str:
    """``"2 orphan sidecars retired: a.json, b.json"`` of the retirements of ``kind`` among
    ``pruned`` (empty when none)."""
    from drivestage.paths import printable

    names = [printable(d.name) for d in pruned if d.orphan_md5 is not None and d.kind == kind]
    if not names:
        return ""
    named = ", ".join(names[:5]) + (f", … ({len(names) - 5} more)" if len(names) > 5 else "")
    return f"{len(names)} {what}{'s' if len(names) > 1 else ''} retired: {named}"


def _refuse_other_runs(result: "PushResult") -> "PushResult":
    """Raise when the push left checkpoints of another run (everything else was pushed:
    the error holds it, :func:`drivestage.push_result.pushed_of`)."""
    from drivestage.other_runs import refuse
    from drivestage.push_result import attach

    try:
        refuse(result.left)
    except BaseException as exc:
        attach(exc, result)
        raise
    return result


def _push_refusing(*args: Any, force: bool = False, **kwargs: Any) -> "PushResult":
    """:func:`drivestage.upload_tree.push` as the mirror command's periods run it: another
    run's checkpoints stay (unless ``force``), and a period that left some fails with the
    refusal (logged, retried next period; the final push exits 1)."""
    from drivestage.upload_tree import push

    return _refuse_other_runs(push(*args, keep_other_runs=not force, **kwargs))



def _refuse_a_file(src: str, dest: str, verb: str = "push") -> None:
    """A file as SRC (the zip a user wants on Drive) is a usage error that says how to send
    it: push mirrors a folder's files into DEST. So is a Drive path (pull meant: the
    arguments swapped), which said only "is not a local folder", and an empty SRC or DEST
    (``verb``: the command, push or mirror, as the message names it)."""
    from drivestage.paths import is_drive, refuse_empty, refuse_windows_path

    refuse_empty("SRC", src, f"the local folder to {verb} (e.g. logs/)")
    refuse_empty("DEST", dest)
    refuse_windows_path("SRC", src)
    if not is_drive(dest):
        refuse_windows_path("DEST", dest)
    if is_drive(src):
        way = (f"to copy it to this machine: drivestage pull {src} {dest}" if not is_drive(dest)
               else "give a local folder as SRC (e.g. logs/)")
        raise UsageError(f"SRC {src} is a path on Google Drive, and push sends a local folder; "
                         f"{way}")
    if os.path.isfile(src):
        name = os.path.basename(src)
        where = dest.rstrip("/") if dest.rstrip("/") not in ("", "drive:") else dest
        sep = "" if where.endswith((":", "/")) else "/"
        raise UsageError(f"SRC {src} is a file; push sends a folder: put the file in a folder "
                         f"of its own and push that folder (drivestage push upload/ {dest} "
                         f"puts upload/{name} at {where}{sep}{name})")
    from drivestage.unread_memory import refuse_unread_src
    refuse_unread_src(src)   # (a mount that stopped: no folder, nor absent)
    if not os.path.isdir(src):   # (a path not there, a FIFO: exit 2, as README's table says)
        raise UsageError(f"{src} is not a local folder; give the folder to {verb} (e.g. logs/)")


def _refuse_nothing_chosen(src: str, include: tuple[str, ...], exclude: tuple[str, ...],
                          follow_symlinks: bool, verb: str = "push") -> None:
    """Stop a push whose globs choose none of SRC's files, before Drive is asked anything
    (it said ``0 uploaded``, exit 0). Not with --delete: there a filter that chooses nothing
    here is how the files it matches on Drive are removed."""
    from drivestage.local_tree import walk
    from drivestage.no_match import refuse_nothing_chosen

    if not os.path.isdir(src) or walk(src, include, exclude,
                                      follow_symlinks=follow_symlinks).files:
        return
    tree = walk(src, follow_symlinks=follow_symlinks)
    if tree.files:
        refuse_nothing_chosen(src, include, exclude, [f.rel for f in tree.files],
                              [rel.rsplit("/", 1)[-1] for rel in tree.folders], verb=verb)


def _target(dest: str, api_root: Optional[str], credentials: Optional[str],
            md5_cache: "Md5Cache", *, pushing: bool = False) -> "tuple[RemoteStore, StorePath]":
    """DEST through the one door, with the command's --api-root/--credentials; ``pushing``
    into a Drive mount is warned of (what it sends may never reach Drive)."""
    from drivestage.lost_mounts import push_into_mount_warning
    from drivestage.paths import drive_hint, is_drive, refuse_bad_place, refuse_dangling_link
    from drivestage.remote import open_store

    refuse_bad_place("DEST", dest)
    # `push logs Models/x/logs` (drive: forgotten) makes that folder here, exit 0: said, as
    # the trainer says it of drive.logs. A folder that is there, or ./x, /x, is meant.
    hint = None if is_drive(dest) or os.path.lexists(os.path.expanduser(dest)) \
        else drive_hint(dest, "folder")
    opened = open_store(dest, api_root=api_root, credentials=credentials, md5_cache=md5_cache)
    if not is_drive(dest):   # (a push said "is a file, not a folder" of such a link; Colab's
        refuse_dangling_link("DEST", os.path.expanduser(dest))   # unmounted Drive: above)
    warning = push_into_mount_warning(dest) if pushing and not is_drive(dest) else None
    if warning is None and pushing and hint is not None:
        warning = (f"DEST {dest} is a local folder ({os.path.abspath(os.path.expanduser(dest))}"
                   f"), not Google Drive: the push copies there only; {hint}")
    if warning is None and pushing and dest.rstrip("/") == "drive:":
        # (`push logs drive:` put results.csv, epoch_*.pt... loose at the top of My Drive,
        # beside the user's own files, without a word: ux35)
        warning = (f"DEST {dest} is the top of My Drive: SRC's files land there loose, beside "
                   "everything else in it; to keep them together push into a folder, e.g. "
                   "drive:logs")
    if warning is not None:
        log.warning("%s", warning)
    return opened


@cli.command("push")
@click.argument("src", type=click.Path())
@click.argument("dest")
@click.option("--emptied", multiple=True, metavar="PATH",
              help="PATH (SRC or a folder in it) was emptied on purpose: where a push could "
                   "not read it before and it reads empty now, or is gone or holds other "
                   "files with the mount it was on undone, take it as it reads (--delete "
                   "removes its copies on Drive that it lacks), not as a mount point left "
                   "unmounted; repeatable (a mirror's or trainer's: drivestage unread "
                   "forget PATH).")
@_transfer_options
@_policy_options
@drive_options
@stops_as_ctrl_c
def push_cmd(src: str, dest: str, emptied: tuple[str, ...], include: tuple[str, ...],
             exclude: tuple[str, ...],
             delete: bool, delete_permanently: bool, max_delete: Optional[int],
             follow_symlinks: bool, chunk_size: Optional[str], jobs: int, force: bool,
             use_trash: bool, protect: tuple[str, ...], api_root: Optional[str],
             credentials: Optional[str], **policy_opts: Any) -> None:
    """Mirror the local folder SRC into DEST (drive:path or a directory), incrementally.

    Only files whose size or md5 differ are sent; uploads are resumable (a killed push
    resumes on the next run) and md5-verified; with a policy, DEST is pruned after the
    uploads are verified (without --keep-last, --keep-best, --keep-every, --keep-runs or
    --max-bytes nothing is pruned). A checkpoint in DEST that belongs to another training run is left
    as it is (exit 1, naming it, once the rest is pushed) unless --force.

    SIGTERM (exit 143) and SIGHUP (129) end it as a Ctrl-C does (130): what it sent is said,
    its md5s saved, the upload under way resumed by the next push.
    """
    from drivestage.state import Md5Cache
    from drivestage.stderr_tail import say
    from drivestage.upload_tree import push

    _refuse_a_file(src, dest)
    policy = _policy(policy_opts)
    if (include or exclude) and not (delete or delete_permanently):
        _refuse_nothing_chosen(src, include, exclude, follow_symlinks)
    from drivestage.push_result import pushed_of, went

    cache = Md5Cache()
    try:
        with _progress_bar(0, "push") as bar:
            result = push(src, _target(dest, api_root, credentials, cache, pushing=True),
                          policy, include=include, exclude=exclude, delete=delete,
                          delete_permanently=delete_permanently, max_delete=max_delete,
                          follow_symlinks=follow_symlinks, chunk_size=_chunk(chunk_size),
                          protect=protect, use_trash=use_trash, jobs=jobs,
                          progress=bar.update, md5_cache=cache, keep_other_runs=not force,
                          emptied=emptied)
    except BaseException as exc:
        # What went before it failed, in the summary's words, before the Error line
        # (guards41: the summary was the success's alone).
        got = pushed_of(exc)
        if got is not None and went(got):
            say(f"push {src} -> {dest}, then failed: {_summary(got)}")
        raise
    say(f"push {src} -> {dest}: {_summary(result)}")
    _refuse_other_runs(result)


@cli.command("prune")
@click.argument("dest")
@_prune_policy_options
@click.option("--dry-run", "-n", is_flag=True, help="Print the plan; delete nothing.")
@drive_options
@stops_as_ctrl_c
def prune_cmd(dest: str, use_trash: bool, protect: tuple[str, ...], dry_run: bool,
              api_root: Optional[str], credentials: Optional[str], **policy_opts: Any) -> None:
    """Apply a retention policy to the checkpoints in DEST; print the plan as a table.

    Exits 1 when the size budget cannot hold what the rest of the policy keeps (as push does);
    the rest of the plan is applied all the same. Such a budget deletes nothing for itself
    (a budget below what no budget deletes is taken for a slip); the message names the size
    from which on it is met.
    """
    from drivestage.pruning import over_budget, prune
    from drivestage.retention import format_plan
    from drivestage.state import Md5Cache

    policy = _policy(policy_opts)
    if not policy.active:
        raise UsageError("prune needs a policy: --keep-last N, --keep-best K --metric NAME, "
                         "--keep-every E, --keep-runs N or --max-bytes SIZE")
    cache = Md5Cache()
    with missing_is_usage(dest):
        decision = prune(_target(dest, api_root, credentials, cache), policy,
                         dry_run=dry_run, use_trash=use_trash, protect=protect, md5_cache=cache)
    click.echo(format_plan(decision))
    _say_unmatched(protect, decision, dest)
    if dry_run:
        click.echo("Dry run: nothing was deleted.", err=True)
    if not decision.fits:
        raise over_budget(decision, dest)


def _say_unmatched(protect: tuple[str, ...], decision: Any, dest: str) -> None:
    """A warning for each ``--protect`` that is in DEST under no name or id: a typo
    (``epoch_05.pt``) protected nothing, and the checkpoint meant went with no word
    (attackcli40). Not an error: a name a run protected may be gone by now. (The log's
    formatter escapes what Drive's names hold.)"""
    names = sorted({d.name for d in decision})
    ids = {d.id for d in decision}
    for name in protect:
        if name not in names and name not in ids:
            held = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3
                                           else "") if names else "none"
            log.warning("--protect %s names no checkpoint in %s (names are case-sensitive; it "
                        "holds %s): it protects nothing", name, dest, held)


@cli.command("dedupe")
@click.argument("dest")
@click.option("--dry-run", "-n", is_flag=True, help="Print what would move; change nothing.")
@drive_options
@stops_as_ctrl_c
def dedupe_cmd(dest: str, dry_run: bool, api_root: Optional[str],
               credentials: Optional[str]) -> None:
    """Merge same-named folders at DEST (a drive: folder) and below it into the oldest.

    Two machines that push into a new path at once can each make its folders (Drive allows
    two of one name): pushes then write into the oldest, while pull, ls and a resume refuse
    the path. Each newer folder's items move into the oldest; a file whose bytes the oldest
    already holds goes to the trash, and so does each folder left empty. An item whose name
    the oldest holds with other bytes, or that Drive does not let this account move or
    trash, stays where it is (exit 1, naming it); one deleted by someone else meanwhile is
    skipped (exit 1, naming it). Nothing is deleted for good. Run it while nothing pushes
    into DEST: a pair of folders of which one is held by a live training run (its lease),
    or that a running mirror pushes into (its claim, on the pair or a folder above), is
    refused before anything of it moves (exit 1).
    """
    from drivestage.dedupe import dedupe
    from drivestage.paths import printable, refuse_bad_place
    from drivestage.remote import open_store

    refuse_bad_place("DEST", dest)
    with missing_is_usage(dest):
        result = dedupe(open_store(dest, api_root=api_root, credentials=credentials),
                        dry_run=dry_run)
    for m in result.merged:   # Drive titles and ids are anybody's: printed escaped
        click.echo(printable(m.line(dry_run)))
    click.echo(f"dedupe {dest}: {result.summary()}", err=True)
    if dry_run:
        click.echo("Dry run: nothing was moved or trashed.", err=True)
    if result.conflicts:
        raise DedupeConflictError(
            f"{_items(result.conflicts, 'stays', 'stay')} in a newer folder: "
            f"{_named(result.conflicts)}; the oldest folder holds another item of that name. "
            f"Rename or remove one of the two on Drive, then run `drivestage dedupe {dest}` "
            "again")
    if result.refused:
        # Someone else's item or folder, a shared drive's Contributor: said once, at the end,
        # after everything else was merged (it used to stop the run at that item, every run).
        raise DedupeConflictError(
            f"{_items(result.refused, 'stays where it was', 'stay where they were')}: "
            f"Drive refused this account moving or trashing it (the warning above says "
            f"why): {_named(result.refused)}. Its owner, or a Manager of the shared drive, "
            f"may: do it on Drive, or have them run `drivestage dedupe {dest}`")
    if result.arrived:
        raise DedupeConflictError(
            f"{_items(result.arrived, 'reached', 'reached')} a newer folder while dedupe ran: "
            f"{_named(result.arrived)}; it stays there. Run `drivestage dedupe {dest}` "
            "again once nothing pushes there")
    if result.elsewhere:
        raise DedupeConflictError(
            f"{_items(result.elsewhere, 'stays', 'stay')} in a newer folder: "
            f"{_named(result.elsewhere)}; the oldest folder holds its bytes, but it is also in "
            "another folder (an item with two parents, kept from before 2020), which the trash "
            "would take it from too, and Drive refused taking it out of the newer folder only "
            "(the warning above says why). Take it out of the newer folder on Drive (it stays "
            f"in its other folder), then run `drivestage dedupe {dest}` again")
    if result.vanished:
        # Skipped, not merged: exit 1, so a script notices something else changed the path.
        gone = _items(result.vanished, "was gone when dedupe came to it",
                      "were gone when dedupe came to them")
        raise DedupeConflictError(
            f"{gone} (deleted or trashed meanwhile, by someone or something else): "
            f"{_named(result.vanished)}; everything else was merged. Look in Drive's trash if "
            "it was not meant to go")


def _items(found: list[Any], one: str, many: str) -> str:
    return f"1 item {one}" if len(found) == 1 else f"{len(found)} items {many}"


def _named(found: list[Any]) -> str:
    """The first three of ``found`` (dedupe's Conflicts), where each stays."""
    from drivestage.paths import printable

    shown = ", ".join(printable(f"{c.where} (in id {c.folder_id})") for c in found[:3])
    return shown + (f" and {len(found) - 3} more" if len(found) > 3 else "")
