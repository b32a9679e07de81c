"""drivestage's local state: the md5 cache, the upload sessions and the folders made lately,
under one state folder.

They live under ``$DRIVESTAGE_STATE_DIR`` (default ``~/.cache/drivestage``) as small JSON
files, written atomically and under a file lock so concurrent processes do not clobber each
other. A damaged state file costs only re-hashing or a fresh upload session.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from filelock import FileLock, Timeout

from drivestage import sources
from drivestage.claims import Claims
from drivestage.errors import LocalFileError, UsageError
from drivestage.interrupts import deferred
from drivestage.lockdir import folder_for
from drivestage.localfs import atomic_write, file_md5, fuse_devices, open_regular
from drivestage.paths import refuse_dangling_link
from drivestage.pool import aside
from drivestage.store import RemoteEntry

log = logging.getLogger(__name__)

#: Sessions older than this are dropped from the state file (Drive keeps them ~1 week).
SESSION_MAX_AGE = 7 * 24 * 3600
#: Uploads of one file to one place under way at once (threads, processes) that each get a
#: session record of their own; one more is not saved (cut, it starts over).
SESSION_SLOTS = 4
#: How long a state file's lock is waited for. Its holders keep it for one small
#: read-modify-write (milliseconds); one stopped while it held it (Ctrl-Z, a debugger's
#: breakpoint) or stuck (a stat of a mount that does not answer) held every other push,
#: mirror and trainer hook of the machine, silently, for as long (attackb52). Past it the
#: update is not made, as where the state folder cannot be written: said, and it costs only
#: the state (:meth:`JsonFile.update_or_warn`).
LOCK_WAIT_S = 10.0
#: A lock that was not had in :data:`LOCK_WAIT_S` is waited for this long at most by the
#: same process's later updates, until it is had again (said once: a debug line after): a
#: push updating the file once a chunk (upload sessions) waited the whole bound, and said
#: so, each time.
STALLED_WAIT_S = 0.5
#: The lock files of this process's state files whose last wait ran out.
_stalled: set[str] = set()


def state_dir() -> Path:
    """Where drivestage keeps its local state (md5 cache, upload sessions), created if
    missing; one error line when it cannot be a folder."""
    root = os.environ.get("DRIVESTAGE_STATE_DIR") or os.path.join("~", ".cache", "drivestage")
    path = Path(root).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        refuse_dangling_link("DRIVESTAGE_STATE_DIR", str(path))   # (it is no file: a link)
        raise UsageError(f"drivestage's state folder {path} (DRIVESTAGE_STATE_DIR) is a file, "
                         "or lies under one; point DRIVESTAGE_STATE_DIR at a folder (default "
                         "~/.cache/drivestage)") from None
    except OSError as exc:
        # A path that cannot be a folder (no such place, not allowed, read-only, too long) is
        # a bad setting, as a file there is (exit 2); a full disk or an I/O error is not.
        error = LocalFileError if exc.errno in _NOT_THE_SETTING else UsageError
        raise error(f"cannot create drivestage's state folder {path} "
                    f"({exc.strerror or exc}); point DRIVESTAGE_STATE_DIR at a folder "
                    "you can write") from None
    return path


#: mkdir failures that say nothing against the path given: a plain error (exit 1).
_NOT_THE_SETTING = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})


def read_json(path: Path, limit: Optional[int] = None) -> Any:
    """The JSON value in the state file ``path``. A regular file only, opened without
    waiting (a FIFO there held every command for good, waiting for a writer; a link to
    ``/dev/zero`` filled memory in seconds: attack51); ``limit``: the most bytes it may hold.
    Raises OSError (``NotRegularFileError`` for those), ValueError where it is no JSON, or
    more than ``limit``, or nested too deep to read (a RecursionError, a traceback before)."""
    with os.fdopen(open_regular(path), "rb") as fh:
        raw = fh.read() if limit is None else fh.read(limit + 1)
    if limit is not None and len(raw) > limit:
        raise ValueError(f"more than {limit} bytes")
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deep") from None


class LockBusyError(LocalFileError):
    """A state file's lock not had in the bound (:data:`LOCK_WAIT_S`): an OSError (EBUSY,
    the state file as its ``filename``) that :meth:`JsonFile.update_or_warn` says, and a
    command's error line where a direct :meth:`JsonFile.update` meets it (``runs forget``);
    ``again``: its last wait in this process ran out too (said once)."""

    again = False

    def __str__(self) -> str:
        return f"cannot write {self.filename} ({self.strerror}): nothing was changed; try again"


class JsonFile:
    """A small JSON dict on disk: locked read-modify-write, atomic replace."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._held: Optional[FileLock] = None  # (one: reentrant, as a nested update needs)

    def _lock(self) -> FileLock:
        """The file's lock, ``<file>.lock`` beside it, or elsewhere where its file system
        cannot lock files (:mod:`drivestage.lockdir`)."""
        if self._held is None:
            where = folder_for(self.path.parent)
            self._held = FileLock(str(where / (self.path.name + ".lock")))
        return self._held

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The file's lock held in the block, waited for :data:`LOCK_WAIT_S` at most: past
        it an OSError (EBUSY) that says who may hold it."""
        lock = self._lock()
        name = str(lock.lock_file)
        bound = STALLED_WAIT_S if name in _stalled else LOCK_WAIT_S
        try:
            lock.acquire(timeout=bound)
        except Timeout:
            busy = LockBusyError(errno.EBUSY, f"its lock {name} is held by another process of "
                                 f"this machine, for {bound:g} s now: one stopped (Ctrl-Z, a "
                                 "debugger) or stuck on a mount that does not answer? fuser -v "
                                 "names it", str(self.path))
            busy.again = name in _stalled
            _stalled.add(name)
            raise busy from None
        _stalled.discard(name)
        try:
            yield
        finally:
            lock.release()

    def wait_free(self) -> None:
        """Wait till no other process is changing the file (its lock had and let go), at most
        :data:`LOCK_WAIT_S`: past it :class:`LockBusyError`. A reader whose decision rests on
        a change another process may be making (``push --delete`` on the unread memory's
        note, attackc52) waits for it."""
        if not os.access(self._lock().lock_file, os.W_OK):
            return   # (none taken yet, or one this user cannot take: a read-only state folder)
        with self._locked():
            pass

    def read(self) -> dict[str, Any]:
        try:
            data = read_json(self.path)
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # A damaged state file only costs re-hashing or a fresh session.
            log.warning("ignoring unreadable state file %s: %s", self.path, exc)
            return {}

    def update(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to the current content and write it back atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            data = self.read()
            change(data)
            atomic_write(str(self.path), json.dumps(data, separators=(",", ":")).encode())
            return data

    def update_or_warn(self, change: Callable[[dict[str, Any]], None], lost: str,
                       busy: str = "") -> bool:
        """:meth:`update`; whether it was written. A state folder that cannot be written (a
        full disk, a read-only one) costs only what ``lost`` says, in a warning: the state
        saves work, it never fails a transfer that worked. ``busy``: what it says instead
        where the lock was held (:class:`LockBusyError`: no disk to free there)."""
        try:
            self.update(change)
            return True
        except OSError as exc:
            said = log.debug if isinstance(exc, LockBusyError) and exc.again else log.warning
            said("cannot write %s (%s): %s", self.path, exc.strerror or exc,
                 busy if busy and isinstance(exc, LockBusyError) else lost)
            return False


class MadeFolders:
    """The Drive folders this machine made lately, by (parent id, name): Drive's listing
    (eventually consistent) may not show a folder for a while after it is made, and the next
    push (another process) would make a second one of the same name."""

    #: How long a folder is remembered: far longer than Drive's listings lag.
    MAX_AGE = 3600.0

    def __init__(self, path: Optional[Path] = None):
        self._file = JsonFile(path or state_dir() / "made_folders.json")

    @staticmethod
    def _key(parent_id: str, name: str) -> str:
        return f"{parent_id}/{name}"

    def recall(self, parent_id: str, name: str) -> Optional[str]:
        """The id of the folder ``name`` this machine made in ``parent_id`` lately, if any."""
        rec = self._file.read().get(self._key(parent_id, name))
        if not isinstance(rec, dict) or not _fresh_for(rec, self.MAX_AGE, time.time()):
            return None
        folder_id = rec.get("id")
        return folder_id if isinstance(folder_id, str) else None

    def remember(self, parent_id: str, name: str, folder_id: str) -> None:
        now = time.time()

        def change(data: dict[str, Any]) -> None:
            for key in [k for k, v in data.items()
                        if not isinstance(v, dict) or not _fresh_for(v, self.MAX_AGE, now)]:
                del data[key]
            data[self._key(parent_id, name)] = {"id": folder_id, "t": now}
        self._file.update_or_warn(change, "a push right after this one may make the folder "
                                  "again while Drive's listing does not show it yet")


def _fresh_for(record: dict[str, Any], max_age: float, now: float) -> bool:
    t = record.get("t")
    # (Dated after now: written before the clock stepped back; kept as long either way.
    # Taken for none, a push made the folder a second time: attack48.)
    return isinstance(t, (int, float)) and abs(now - t) <= max_age


def stat_key(st: os.stat_result) -> list[int]:
    """What tells two versions of a file apart without reading it: size and mtime."""
    return [st.st_size, st.st_mtime_ns]


#: How long after its ctime a file's hash may still miss a write (see :func:`settled`): a
#: kernel's coarse clock ticks every few ms; a file system keeping whole seconds (ext3, ext4
#: with small inodes, FAT's two) gets COARSE_RACY_NS.
RACY_NS = 50_000_000
COARSE_RACY_NS = 2_000_000_000


def settled(st: os.stat_result, began_ns: int) -> bool:
    """Whether a hash that began at ``began_ns`` (``time.time_ns()``, after ``st`` was taken)
    sees every write to come as another :func:`identity`: git's "racily clean" rule. A
    write stamps the ctime at the clock's granularity (a few ms; a whole second or two on
    some file systems), so one in the same tick as the ctime the hash began with - right
    after the file was written - leaves the identity as it was. Such an md5 serves this
    process; a stamp records no identity for it (the next pull hashes the file once more)."""
    ctime = st.st_ctime_ns
    return ctime + (COARSE_RACY_NS if ctime % 1_000_000_000 == 0 else RACY_NS) <= began_ns


def wait_settled(st: os.stat_result) -> None:
    """Wait (at most COARSE_RACY_NS) until a hash begun now is :func:`settled` for ``st``. A
    checkpoint pushed the moment it is saved (the trainer flushes its mirror at once) was
    hashed in the tick of its last write: no md5 kept, the next push read it whole again.
    A few ms of waiting cost less than that read."""
    ctime = st.st_ctime_ns
    left = ctime + (COARSE_RACY_NS if ctime % 1_000_000_000 == 0 else RACY_NS) - time.time_ns()
    if 0 < left <= COARSE_RACY_NS:
        time.sleep(left / 1e9)


def _cache_key(st: os.stat_result) -> list[int]:
    """What an md5 cache entry is valid for: size and mtime, and the inode and ctime. A file
    rewritten with the same size and its mtime put back (``os.utime``, ``cp -p``, ``tar x``)
    kept its old md5 by size and mtime alone, and ``push`` called it unchanged: its new bytes
    never left the machine. Every write moves the ctime, which no user sets back; a chmod
    or a new hard link moves it too, which costs a hash of that file."""
    return stat_key(st) + [st.st_ino, st.st_ctime_ns]


class Md5Cache:
    """Local md5s keyed by absolute path + size + mtime + inode + ctime, so unchanged files
    are not re-hashed (an entry of 0.1.0's form, ``[size, mtime, md5]``, is hashed again).

    Changes are kept in memory until :meth:`save` (one write per push, not per file).
    Entries of files gone from the disk are forgotten at a save once the file holds more than
    twice the entries of the last such sweep (plus :attr:`SWEEP_SLACK`): the cost of the
    sweep (a stat per entry) is spread over the entries added since.
    """

    #: Entries a cache may gain over what its last sweep kept before it sweeps again.
    SWEEP_SLACK = 256

    def __init__(self, path: Optional[Path] = None):
        self._file = JsonFile(Path(path) if path else state_dir() / "md5-cache.json")
        self._entries: dict[str, Any] = self._file.read()
        self._dirty: dict[str, Any] = {}
        self._mutex = threading.Lock()
        self._swept = 0  # entries the last sweep kept (0: none yet in this process)
        #: Devices whose identities vouch for nothing (FUSE and network mounts), and every
        #: device seen so far: the mount table is read again for a device not seen yet.
        self._untrusted: frozenset[int] = frozenset()
        self._devices: set[int] = set()
        #: Paths that kept changing while they were uploaded (drivestage.snapshots), in
        #: memory only: a mirror sends them from a private copy at once.
        self.changing: set[str] = set()

    def get(self, path: str, st: Optional[os.stat_result] = None) -> Optional[str]:
        """The cached md5 of ``path`` if its size, mtime, inode and ctime are unchanged, else
        None."""
        key = os.path.abspath(path)
        st = st or os.stat(path)
        if not self._trusted(st):
            return None
        with self._mutex:
            rec = self._entries.get(key)
        # [size, mtime_ns, md5, ino, ctime_ns]; anything else (an entry edited by hand, the
        # old form without the inode and ctime) is not trusted.
        if isinstance(rec, list) and len(rec) == 5 and rec[:2] + rec[3:] == _cache_key(st) \
                and isinstance(rec[2], str) and re.fullmatch(r"[0-9a-f]{32}", rec[2]):
            return rec[2]
        return None

    def put(self, path: str, st: os.stat_result, md5: str, *,
            began_ns: Optional[int] = None, written: bool = False) -> None:
        """Remember ``md5`` for ``path`` as it was when ``st`` was taken, by a hash that
        began at ``began_ns`` (else now, which is later). Not one hashed in the tick of the
        file's last write (:func:`settled`): a rewrite in that tick keeps the key, and the
        next push called the file unchanged. ``written``: the bytes this process has just
        written there (a copy): kept, only another writer in the same tick could differ."""
        if not written and not settled(st, time.time_ns() if began_ns is None else began_ns):
            return
        if not self._trusted(st):
            return
        key = os.path.abspath(path)
        valid_for = _cache_key(st)
        with self._mutex:  # the md5 third, where 0.1.0's [size, mtime, md5] had it
            self._entries[key] = self._dirty[key] = valid_for[:2] + [md5] + valid_for[2:]

    def _trusted(self, st: os.stat_result) -> bool:
        """Whether ``st``'s identity may vouch for an md5: not on a FUSE or network mount
        (:func:`~drivestage.localfs.fuse_devices`), where a rewrite made through the remote
        keeps the size, mtime, inode and ctime the daemon reports (or a client shows a
        cached stat), and a push called the new bytes unchanged. Such files are hashed at
        every push, as every pull hashes them."""
        with self._mutex:
            if st.st_dev not in self._devices:  # a mount made since is read too
                self._untrusted = fuse_devices()
                self._devices.add(st.st_dev)
            return st.st_dev not in self._untrusted

    def md5(self, path: str, *, follow: bool = True, real: str = "") -> str:
        """The md5 of ``path``: from the cache, or hashed (streaming) and cached; through a
        link at ``path`` only where ``follow`` (a push's walked file: a link planted there
        since the walk is never read, pushlinks46), and where ``real`` is given, read only
        where the walk found it (:func:`drivestage.sources.open_walked`)."""
        st = os.stat(path, follow_symlinks=follow)
        cached = self.get(path, st)
        if cached:
            return cached
        wait_settled(st)
        began = time.time_ns()

        def hashed() -> str:
            return sources.walked_md5(path, real) if real else file_md5(path, follow=follow)
        # (On a FUSE or network mount, aside: a push's hash in the main thread, a read of a
        # hung mount there, held every Ctrl-C until the mount answered: hang52b. Not on a
        # disk: a thread a file costs 0.1-0.2 ms.)
        digest = hashed() if self._trusted(st) else aside(hashed, "drivestage-hash")
        # (not cached if it changed meanwhile)
        if _cache_key(os.stat(path, follow_symlinks=follow)) == _cache_key(st):
            self.put(path, st, digest, began_ns=began)
        return digest

    def save(self) -> None:
        """Write pending entries (merged with what other processes wrote)."""
        with self._mutex:
            dirty, self._dirty = self._dirty, {}
            count = len(self._entries)
        gone: list[str] = []
        # A trainer's autosave_<iteration>.pt is a new name at every save (the older ones
        # deleted): one entry more per period of a mirror, for ever, run after run on the
        # machine (the file is read and rewritten whole at every save). The entries of files
        # gone are looked for before the lock (a stat each: one below a mount that hangs held
        # every other process's save with it, attackb52), and those still as they were then
        # go under it.
        old: dict[str, Any] = {}
        if dirty and count > 2 * self._swept + self.SWEEP_SLACK:
            old = {key: rec for key, rec in self._file.read().items()
                   if key not in dirty and not os.path.lexists(key)}

        def change(data: dict[str, Any]) -> None:
            data.update(dirty)
            if old or count > 2 * self._swept + self.SWEEP_SLACK:
                gone[:] = [key for key, rec in old.items() if data.get(key) == rec]
                for key in gone:
                    del data[key]
                self._swept = len(data)
        if dirty:
            self._file.update_or_warn(change, "the files of this run are hashed again next time")
        with self._mutex:
            for key in gone:
                if key not in self._dirty:  # (put again meanwhile: it exists)
                    self._entries.pop(key, None)


class UploadSessions:
    """Persisted resumable-session URIs, keyed by local file and destination.

    An upload uses a record only while it holds it (:meth:`claimed`): two uploads of one
    file to one place at once (two pushes, threads or processes) each get their own, so
    neither sends into the other's session, and neither one's end forgets the other's."""

    def __init__(self, path: Optional[Path] = None):
        self._file = JsonFile(Path(path) if path else state_dir() / "upload-sessions.json")
        self._claims = Claims(Path(str(self._file.path) + ".claims"))

    @staticmethod
    def key(local_path: str, folder: RemoteEntry, name: str,
            replace: Optional[RemoteEntry]) -> str:
        """The session's key: the local file and where it goes."""
        return "|".join([os.path.abspath(local_path), folder.id, name,
                         replace.id if replace else ""])

    @contextmanager
    def claimed(self, key: str, fits: Callable[[dict[str, Any]], bool]
                ) -> Iterator[Optional[str]]:
        """The name of a record of ``key`` (``key`` itself or a sibling) that no other
        upload uses while the block runs: one whose saved session ``fits`` (a dead upload's,
        to resume), else a free one. None when live uploads hold all of them (then the
        upload saves nothing). The claim ends with the block, or with the process."""
        names = [key] + [f"{key}#{i}" for i in range(1, SESSION_SLOTS)]
        saved = self._file.read()
        names.sort(key=lambda n: not (isinstance(saved.get(n), dict) and fits(saved[n])))
        name: Optional[str] = None
        try:
            with deferred():  # a Ctrl-C cannot fall between taking it and the finally
                name = next((n for n in names if self._claims.take(n)), None)
            if name is None:
                log.info("%d other uploads of %s are under way; this one is not saved for "
                         "a resume", SESSION_SLOTS, key.split("|", 1)[0])
            yield name
        finally:
            if name is not None:
                try:
                    with deferred():  # released whole, or a byte lock outlives its name
                        self._claims.release(name)
                except KeyboardInterrupt:
                    # A Ctrl-C on the way into deferred(), before it holds one back, left
                    # the claim held and its file open for the process's life (a
                    # notebook's). Released now (a name no longer held is left alone).
                    self._claims.release(name)
                    raise

    def get(self, key: str) -> Optional[dict[str, Any]]:
        """The saved session for ``key`` (uri, size, mtime_ns, chunk, created), or None."""
        found = self._file.read().get(key)
        return found if isinstance(found, dict) else None

    def put(self, key: str, record: dict[str, Any]) -> bool:
        """Save the session for ``key`` (and forget sessions older than Drive keeps them);
        whether it was saved (not when the state folder cannot be written)."""
        def change(data: dict[str, Any]) -> None:
            # Drive forgets a session after about a week: so do we. A damaged entry (edited
            # by hand: no record, no time) goes too; it costs only a fresh session.
            now = time.time()
            for old in [k for k, v in data.items() if not _fresh(v, now)]:
                del data[old]
            data[key] = record
        return self._file.update_or_warn(change, "an upload cut now starts over next time")

    def drop(self, key: str) -> None:
        """Forget the session for ``key`` (kept, when the state folder cannot be written,
        until it is older than Drive keeps sessions: a resume asks the server first)."""
        self._file.update_or_warn(lambda data: data.pop(key, None),
                                  "a finished upload's session record stays")


def _fresh(record: Any, now: float) -> bool:
    """Whether a saved session ``record`` is one, and younger than Drive keeps sessions."""
    if not isinstance(record, dict):
        return False
    created = record.get("created", now)
    if isinstance(created, bool) or not isinstance(created, (int, float)):
        return False
    return created >= now - SESSION_MAX_AGE
