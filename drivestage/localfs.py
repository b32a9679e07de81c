"""Local-file helpers shared by every module: streamed md5, atomic writes, the Drive mount."""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from typing import BinaryIO, Iterator, Optional

MiB = 1 << 20


def file_md5(path: str, block: int = 4 * MiB) -> str:
    """Hex md5 of a local file, streamed in ``block``-sized reads."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while True:
            buf = fh.read(block)
            if not buf:
                return h.hexdigest()
            h.update(buf)


#: Longest local name kept whole where drivestage adds a prefix and a suffix of its own
#: (``.<name>.<tag>.ranges.<random>.tmp`` adds about 40 bytes; names may have 255).
FIT_BYTES = 200


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
def atomic_file(path: str, *, mode: Optional[int] = None,
                durable: bool = False) -> Iterator[BinaryIO]:
    """Write ``path`` through a hidden temporary file in the same folder, renamed over ``path``
    only when the ``with`` block ends without an exception (then the temporary file is removed).

    Readers (and ``push``, which skips hidden ``.*.tmp`` files) never see a half-written file
    under the final name. ``mode`` sets the permissions before the rename (default: mkstemp's
    0600). ``durable`` fsyncs the file before the rename and the folder after it, so the new
    content survives a power cut, not only a process death (checkpoints)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        _fsync_folder(folder)


def atomic_write(path: str, data: bytes, *, mode: Optional[int] = None,
                 durable: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_file`)."""
    with atomic_file(path, mode=mode, durable=durable) as fh:
        fh.write(data)


def atomic_write_at(dir_fd: int, name: str, data: bytes, *, mode: Optional[int] = None,
                    durable: bool = False) -> None:
    """:func:`atomic_write` of ``name`` in the folder ``dir_fd`` (a descriptor, so the write
    lands in that very folder whatever its path leads to by now): a hidden temporary file
    made there (``O_EXCL|O_NOFOLLOW``: never an existing file or a link), renamed over
    ``name`` (which replaces a link there, never what it leads to)."""
    for _ in range(100):
        tmp = f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                         os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 random names taken: as mkstemp gives up
        raise FileExistsError(f"no free temporary name for {name}")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
    if durable:
        try:
            os.fsync(dir_fd)
        except OSError:
            pass


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


#: Where Colab mounts Google Drive (``drive.mount('/content/drive')``).
COLAB_DRIVE_MOUNT = "/content/drive"


def drive_mount(path: str, mounts: Optional[str] = None) -> Optional[str]:
    """The Google Drive FUSE mount that ``path`` lies in, or None.

    A FUSE filesystem whose type or source names Drive (Colab's ``fuse.drive``,
    google-drive-ocamlfuse, an rclone ``gdrive:`` remote), read from ``/proc/mounts`` (or
    ``mounts``, the same format), and Colab's ``/content/drive`` whatever the table says."""
    real = os.path.realpath(path)
    found = []
    if real == COLAB_DRIVE_MOUNT or real.startswith(COLAB_DRIVE_MOUNT + os.sep):
        found.append(COLAB_DRIVE_MOUNT)
    if mounts is None:
        try:
            with open("/proc/mounts", encoding="utf-8", errors="replace") as fh:
                mounts = fh.read()
        except OSError:
            mounts = ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        source, point, fstype = (_unescape_mount(f) for f in fields[:3])
        if not fstype.startswith("fuse") or "drive" not in (fstype + source).lower():
            continue
        if real == point or real.startswith(point.rstrip(os.sep) + os.sep):
            found.append(point)
    return max(found, key=len) if found else None


def _unescape_mount(field: str) -> str:
    """``/proc/mounts`` writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field
