"""Local-file helpers shared by every module: streamed md5, atomic writes, the Drive mount,
the FUSE and network mounts. (When an mtime shown now is one seen before:
:mod:`drivestage.mtimes`.)"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import threading
import time
from typing import BinaryIO, Callable, Iterator, Optional, Union

from drivestage import temps
from drivestage.fork_drop import free_in_forks
from drivestage.interrupts import deferred
from drivestage.pool import leavable

MiB = 1 << 20


def file_md5(path: Union[str, int], block: int = 4 * MiB, *, follow: bool = True) -> str:
    """Hex md5 of a local file (or of an open descriptor's, from its start), streamed in
    ``block``-sized reads; through a link at ``path`` only where ``follow``."""
    h = hashlib.md5()
    if isinstance(path, int):
        offset = 0
        while True:
            with leavable():   # (a local archive's hash on a hung mount, aside: hang52b)
                buf = os.pread(path, block, offset)
            if not buf:
                return h.hexdigest()
            offset += len(buf)
            h.update(buf)
    # (A regular file only, opened without waiting: a FIFO put at a file's name after a
    # push's walk held its plan in open() for good, waiting for a writer: attackpush45.)
    # (A read of a hung FUSE mount, a walk's hash of its files, is left by a Ctrl-C: pool)
    with leavable():
        opened = os.fdopen(open_regular(path, follow=follow), "rb")
    with opened as fh:
        while True:
            with leavable():
                buf = fh.read(block)
            if not buf:
                return h.hexdigest()
            h.update(buf)


#: Longest local name kept whole where drivestage adds a prefix and a suffix of its own
#: (``.<name>.<tag>.ranges.<random>.tmp`` adds about 40 bytes; names may have 255).
FIT_BYTES = 200


_UMASK_LOCK = free_in_forks(threading.Lock())


def umask() -> int:
    """This process's umask (the mode a plain open() would give a new file is ``0o666 &
    ~umask()``), read without changing it where Linux says it (``/proc/self/status``):
    ``os.umask(0)`` then ``os.umask(mask)`` left, for that moment, every file another thread
    created writable by anyone (a checkpoint written beside TensorBoard's event files)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # (elsewhere: the strictest mask for that moment, never 0)
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


class NotRegularFileError(OSError):
    """A FIFO, socket, device or folder where a file was expected (:func:`open_regular`)."""


def open_regular(path: Union[str, "os.PathLike[str]"], *, follow: bool = True) -> int:
    """A descriptor of ``path`` for reading (blocking, close-on-exec) when it is a regular
    file, without following a link unless ``follow``; :class:`NotRegularFileError` when it is
    something else (errno ``EISDIR`` for a folder), OSError when it cannot be opened. Opened
    without waiting: a FIFO under a file's name (put there by another program, or in a folder
    that came from elsewhere) held a plain open() for good, waiting for a writer."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        # (a socket cannot be opened at all: its ENXIO, "No such device or address", was said
        # as a read's failure where a FIFO's kind is said, a sidecar's line false: attack51)
        if exc.errno != errno.ENXIO:
            raise
        raise NotRegularFileError(errno.EINVAL, "not a regular file (a FIFO, socket or device)",
                                  os.fspath(path)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
            raise NotRegularFileError(code, "not a regular file (a FIFO, socket or device)"
                                      if code == errno.EINVAL else os.strerror(code),
                                      os.fspath(path))
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def fitted_name(name: str, limit: int = FIT_BYTES) -> str:
    """``name``, or ``long-<sha1 of name>`` when it is longer than ``limit`` bytes: what the
    names of a file's partial download, range record and lock are made from, so that a
    file whose own name fits the file system gets them too. A name that itself starts with
    ``long-`` is hashed too: a Drive title ``long-<sha1 of another name>`` must not share
    that name's partial files."""
    raw = os.fsencode(name)
    if len(raw) <= limit and not name.startswith("long-"):
        return name
    return "long-" + hashlib.sha1(raw).hexdigest()


@contextlib.contextmanager
def atomic_file(path: str, *, mode: Optional[int] = None, durable: bool = False,
                before_replace: Optional[Callable[[], None]] = None,
                sweep_only: Optional[Callable[[str], bool]] = None) -> Iterator[BinaryIO]:
    """Write ``path`` through a hidden temporary file in the same folder, renamed over ``path``
    only when the ``with`` block ends without an exception (then the temporary file is removed).

    Readers (and ``push``, which skips hidden ``.*.tmp`` files) never see a half-written file
    under the final name. ``mode`` sets the permissions before the rename (default: 0600).
    ``durable`` fsyncs the file before the rename and the folder after it, so the new
    content survives a power cut, not only a process death (checkpoints).
    ``before_replace`` runs once the bytes are complete, just before the rename (the trainer
    removes the checkpoint's old sidecar there). The temporary file's name says which
    process made it (:mod:`drivestage.temps`): one a killed process left is removed by the
    next atomic write into that folder, never one a live process is writing; ``sweep_only``:
    only those whose names it accepts (a folder of the user's files, where a file of that
    form may be the user's or Drive's: see :func:`sweep`)."""
    folder = os.path.dirname(os.path.abspath(path))
    sweep(folder, sweep_only)
    tmp: Optional[str] = None
    fh: Optional[BinaryIO] = None
    try:
        with deferred():  # see _open_temp
            fh, tmp = _open_temp(folder, os.path.basename(path), None)
        with fh:
            yield fh
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        _discard(fh, tmp, None)
        raise
    if durable:
        _fsync_folder(folder)


def atomic_write(path: str, data: bytes, *, mode: Optional[int] = None,
                 durable: bool = False,
                 sweep_only: Optional[Callable[[str], bool]] = None) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_file`)."""
    with atomic_file(path, mode=mode, durable=durable, sweep_only=sweep_only) as fh:
        fh.write(data)


def atomic_write_at(dir_fd: int, name: str, data: bytes, *, mode: Optional[int] = None,
                    durable: bool = False) -> None:
    """:func:`atomic_write` of ``name`` in the folder ``dir_fd`` (a descriptor, so the write
    lands in that very folder whatever its path leads to by now): a hidden temporary file
    made there (``O_EXCL|O_NOFOLLOW``: never an existing file or a link), renamed over
    ``name`` (which replaces a link there, never what it leads to)."""
    sweep(dir_fd)
    tmp: Optional[str] = None
    fh: Optional[BinaryIO] = None
    try:
        with deferred():  # see _open_temp
            fh, tmp = _open_temp(dir_fd, name, dir_fd)
        with fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        _discard(fh, tmp, dir_fd)
        raise
    if durable:
        try:
            os.fsync(dir_fd)
        except OSError:
            pass


def _open_temp(where: Union[str, int], name: str,
               dir_fd: Optional[int]) -> tuple[BinaryIO, str]:
    """:func:`_create_temp`, its descriptor held by a file object. Callers hold a Ctrl-C back
    (:func:`~drivestage.interrupts.deferred`) from the call until both are in their own
    variables, inside their ``try``: one that landed between (``os.fdopen``'s first line)
    left the descriptor open for good - a notebook's kernel kept a deleted file open for
    each - or the file itself in the folder."""
    fd, tmp = _create_temp(where, name, dir_fd)
    return os.fdopen(fd, "wb"), tmp


def _discard(fh: Optional[BinaryIO], tmp: Optional[str], dir_fd: Optional[int]) -> None:
    """An atomic write that failed: its temporary file closed (a Ctrl-C that
    :func:`~drivestage.interrupts.deferred` raised after :func:`_open_temp` finds it open,
    and the traceback, which a notebook keeps, would hold it) and removed."""
    if fh is not None:
        fh.close()
    if tmp is not None:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass


def _create_temp(where: Union[str, int], name: str,
                 dir_fd: Optional[int]) -> tuple[int, str]:
    """A new temporary file for ``name`` (``O_EXCL|O_NOFOLLOW``: never an existing file or a
    link) in the folder ``where`` (a path, or the descriptor ``dir_fd``); its descriptor and
    its path (its name, with ``dir_fd``)."""
    for _ in range(100):
        tmp = temps.name_for(name)
        path = tmp if dir_fd is not None else os.path.join(str(where), tmp)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                         os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            continue
        return fd, path
    raise FileExistsError(f"no free temporary name for {name}")  # pragma: no cover


#: A folder is swept for dead processes' temporary files at most this often per process
#: (a folder pull writes a stamp per file into one folder: one listing, not one per file).
SWEEP_EVERY_S = 60.0
_swept: dict[tuple[str, int, int, Optional[Callable[[str], bool]]], float] = {}
_swept_lock = free_in_forks(threading.Lock())


def sweep(folder: Union[str, int], only: Optional[Callable[[str], bool]] = None) -> list[str]:
    """Remove the temporary files of atomic writes that dead processes left in ``folder`` (a
    path or a descriptor; :func:`drivestage.temps.stale`), at most once every
    :data:`SWEEP_EVERY_S` per folder and process; the names removed. ``only``: just those
    whose names it accepts (in a folder of staged files, a Drive file or an archive member
    may have that form: ``.x.<8 hex>-<pid>.<6 hex>.tmp``, a day old, is no leftover of
    ours). Never raises: a folder that cannot be listed keeps its leftovers."""
    try:
        st = os.stat(folder)
        key = (folder if isinstance(folder, str) else "", st.st_dev, st.st_ino, only)
        now = time.monotonic()
        with _swept_lock:
            if now - _swept.get(key, -SWEEP_EVERY_S) < SWEEP_EVERY_S:
                return []
            _swept[key] = now
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    dir_fd = folder if isinstance(folder, int) else None
    for name in names:
        if only is not None and not only(name):
            continue
        if not temps.stale(name, _lstat_or_none(name, folder), folder=st):
            continue
        try:
            os.unlink(name if dir_fd is not None else os.path.join(str(folder), name),
                      dir_fd=dir_fd)
        except OSError:
            continue
        removed.append(name)
    return removed


def _lstat_or_none(name: str, folder: Union[str, int]) -> Optional[os.stat_result]:
    if not temps.parse(name):
        return None  # (only our own temporary files are looked at)
    try:
        if isinstance(folder, int):
            return os.stat(name, dir_fd=folder, follow_symlinks=False)
        return os.lstat(os.path.join(folder, name))
    except OSError:
        return None


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: The mount table whose file-system types say which devices are FUSE mounts (a seam: tests
#: name a folder's device a FUSE one).
MOUNTINFO = "/proc/self/mountinfo"


#: Network file systems: a client answers a stat from its attribute cache (NFS: up to 60 s
#: old), so another client's rewrite shows the old identity for a while; the open() of a
#: hash revalidates it (close-to-open). Also WSL1's Windows drives (drvfs), the cluster file
#: systems of HPC sites (beegfs, gpfs, panfs) and coda (davfs2's where FUSE is missing): mount52.
NETWORK_FS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "afs", "lustre",
                        "virtiofs", "gfs2", "ocfs2", "drvfs", "beegfs", "gpfs", "panfs", "coda"})


def fuse_devices(table: Optional[str] = None) -> frozenset[int]:
    """The devices (``st_dev``) of the FUSE and network mounts in :data:`MOUNTINFO`. A FUSE
    daemon (rclone, gcsfuse, google-drive-ocamlfuse, Colab's Drive) reports the identity it
    likes: the ctime is the mtime, the inode the path's, and a rewrite made through the
    remote (another machine) keeps both when it keeps the size and the mtime; a network
    file system shows a cached one (:data:`NETWORK_FS`). There, an identity vouches for no
    md5 from an earlier process. Empty when the table cannot be read."""
    try:
        with open(table or MOUNTINFO, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().split("\n")   # (a name's U+2028 is no line's end: attack50)
    except OSError:
        return frozenset()
    found = set()
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, kind = left.split(), right.split()
        if len(fields) < 3 or not kind or not (kind[0].startswith("fuse")
                                               or kind[0] in NETWORK_FS):
            continue
        major, _, minor = fields[2].partition(":")
        if major.isdigit() and minor.isdigit():
            found.add(os.makedev(int(major), int(minor)))
    return frozenset(found)


_JUDGED: dict[int, bool] = {}


def on_mount(dev: int) -> bool:
    """Whether device ``dev`` is a FUSE or network mount's (:func:`fuse_devices`), judged
    once per device and process: a read that runs aside there (hang52b) reads the mount
    table once, not once a file (nor a different number of lines each time)."""
    known = _JUDGED.get(dev)
    if known is None:
        known = _JUDGED[dev] = dev in fuse_devices()
    return known


def mount_of(path: str, table: Optional[str] = None) -> Optional[tuple[str, str]]:
    """``(file-system type, mount point)`` of the mount ``path`` lies on, by its device in
    :data:`MOUNTINFO` (the last mount of that device: the one on top); None when unknown."""
    try:
        dev = os.stat(path).st_dev
        with open(table or MOUNTINFO, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().split("\n")
    except OSError:
        return None
    found = None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, kind = left.split(" "), right.split(" ")
        major, _, minor = fields[2].partition(":") if len(fields) > 4 else ("", "", "")
        if kind and major.isdigit() and minor.isdigit() and \
                os.makedev(int(major), int(minor)) == dev:
            found = (unescape_mount(kind[0]), unescape_mount(fields[4]))
    return found


#: Where Colab mounts Google Drive (``drive.mount('/content/drive')``).
COLAB_DRIVE_MOUNT = "/content/drive"


def drive_mount(path: str, mounts: Optional[str] = None) -> Optional[str]:
    """The Google Drive FUSE mount that ``path`` lies in, or None.

    A FUSE filesystem whose type or source names Drive (Colab's ``fuse.drive``,
    google-drive-ocamlfuse, an rclone ``gdrive:`` remote), or any FUSE mount at Colab's
    :data:`COLAB_DRIVE_MOUNT`, read from ``/proc/mounts`` (or ``mounts``, the same format).
    A plain folder there (nothing mounted) is local disk: counted as the mount, it got the
    warnings of one ("sends every byte back to Drive", "lost when the runtime ends"), all
    false (mount31). Only where the table cannot be read at all is ``/content/drive`` taken
    for the mount by its name (the side that removes and prunes nothing there)."""
    real = os.path.realpath(path)
    found = []
    if mounts is None:
        try:
            with open("/proc/mounts", encoding="utf-8", errors="surrogateescape") as fh:
                mounts = fh.read()
        except OSError:
            mounts = None
    if mounts is None and _within(real, COLAB_DRIVE_MOUNT):
        found.append(COLAB_DRIVE_MOUNT)
    for line in (mounts or "").split("\n"):
        fields = line.split(" ")
        if len(fields) < 3:
            continue
        source, point, fstype = (unescape_mount(f) for f in fields[:3])
        if not fstype.startswith("fuse") or not (
                "drive" in (fstype + source).lower() or point == COLAB_DRIVE_MOUNT):
            continue
        if _within(real, point):
            found.append(point)
    return max(found, key=len) if found else None


def _within(real: str, point: str) -> bool:
    return real == point or real.startswith(point.rstrip(os.sep) + os.sep)


#: A Colab notebook's folder: ``drive.mount('/content/drive')`` (the old recipe's
#: ``/content/gdrive`` too) shows My Drive at ``<mount>/MyDrive`` and each shared drive at
#: ``<mount>/Shareddrives/<name>``.
COLAB_CONTENT = "/content"
#: ``<mount>/MyDrive/rest`` or ``<mount>/Shareddrives/<name>/rest`` below COLAB_CONTENT.
#: ``<mount>/.shortcut-targets-by-id/<ID>/<name>/rest`` too: where the mount shows what a
#: shortcut in My Drive leads to (a folder shared with you), and the path Colab's file
#: browser copies for a file in it.
_MOUNT_TREE = re.compile(r"([^/]+)/(?:MyDrive|My Drive|Shareddrives/([^/]+)|"
                         r"\.shortcut-targets-by-id/([^/]+)(?:/[^/]+)?)(?:/(.*))?\Z", re.S)


#: What the messages about such a path say about it (after "<path> is under <mount>, ").
UNMOUNTED_DRIVE = "where Colab mounts Google Drive, but Drive is not mounted there"


def unmounted_drive_path(path: str) -> Optional[tuple[str, str]]:
    """``(mount point, drive: path)`` when ``path`` lies where Colab's Drive mount shows My
    Drive or a shared drive (``/content/drive/MyDrive/a/b`` -> ``drive:a/b``,
    ``/content/gdrive/Shareddrives/T/a`` -> ``drive:shared/T/a``, a shortcut's target
    ``/content/drive/.shortcut-targets-by-id/ID/name/a`` -> ``drive:id:ID/a``) but nothing is
    mounted there; None otherwise.

    The old recipe's paths: a push there used to make the folders on local disk and report
    the files uploaded, and a later ``drive.mount()`` refuses the non-empty folder."""
    full = os.path.abspath(os.path.expanduser(path))
    content = COLAB_CONTENT.rstrip(os.sep) or os.sep
    found = _below_content(full, content)
    if found is None:
        # Through a symlink too: ``!ln -s /content/drive/MyDrive /mydrive`` in a notebook
        # whose mount cell did not run (the link dangles) was "/mydrive is a file".
        real = os.path.realpath(full)
        found = _below_content(real, content) if real != full else None
    if found is None:
        return None
    point = os.path.join(content, found.group(1))
    if os.path.ismount(point) or os.path.islink(point):   # (a link: the user put it there)
        return None
    rest = (found.group(4) or "").strip("/")
    if found.group(2):
        spec = f"drive:shared/{found.group(2)}" + (f"/{rest}" if rest else "")
    elif found.group(3):   # the shortcut's target, by id: its name is not needed
        spec = f"drive:id:{found.group(3)}" + (f"/{rest}" if rest else "")
    else:
        spec = "drive:" + rest
    return point, spec


def _below_content(full: str, content: str) -> Optional[re.Match[str]]:
    return _MOUNT_TREE.match(full[len(content) + 1:].replace(os.sep, "/")) \
        if full.startswith(content + os.sep) else None


def unescape_mount(field: str) -> str:
    """``/proc/mounts`` writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def identity(st: os.stat_result) -> tuple[int, ...]:
    """What tells a version of a local file from any other without reading it: device,
    inode, size, mtime and ctime. Every write moves the ctime, and no user can set it back
    (``os.utime`` puts back an mtime and moves the ctime itself): a file rewritten with the
    same size and its mtime put back is another file here. A chmod or a new hard link moves
    it too: that costs a hash, never more."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
