"""A stand-in for Colab's Google Drive mount (``fuse.drive``, DriveFS). The kernel's FUSE
protocol is spoken directly on ``/dev/fuse`` (no libfuse), in a thread of the test process,
so a call in the code under test succeeds or fails for real, in the kernel, the way it does
on Colab. What the real mount does that this models:

* A full Drive: every write answers EIO (the default, :func:`drive_mount`).
* ``writable=True`` (:func:`working_drive_mount`): writes are kept, but, as DriveFS does,
  only in the machine's cache: a file reaches Drive some time after it is closed (minutes;
  30 for a 3 GB file), and ``drive.flush_and_unmount()`` is what waits for that
  (colabtools issues 659, 2607, 287). :meth:`FullDriveMount.flush` sends them;
  :attr:`FullDriveMount.on_drive` holds what Drive has.
* :meth:`FullDriveMount.change_on_drive` / :meth:`~FullDriveMount.catch_up`: Drive gets a
  change from elsewhere and the mount shows it minutes later (astrada/google-drive-ocamlfuse
  issue 450), in the file's node (Drive keeps its id).
* :attr:`FullDriveMount.capacity`: statfs shows a quota, its free part what the mount's
  files leave of it (what a push asks before it makes room).
* :meth:`FullDriveMount.remount` shows Drive's times in milliseconds or, ``grain=10**9``,
  whole seconds; :meth:`FullDriveMount.sent_at` sets the time a file reached Drive with.
* :meth:`FullDriveMount.hang` / :meth:`~FullDriveMount.answer`: the program stops answering
  for a while (every call into the mount waits), as a DriveFS under load does.
* :meth:`FullDriveMount.disconnect`: the program behind the mount ends (DriveFS dies, as it
  does on Colab after a while or under load: colabtools issues 3441, 3940, 4181). The
  kernel then answers every call into the mount ``ENOTCONN`` ("Transport endpoint is not
  connected") until it is unmounted; whatever was not yet on Drive is lost.

Served: folders (lookups, attributes, listing, statfs, create, unlink, mkdir, rename) and,
when writable, file contents. Mounting needs root and ``/dev/fuse``; where either is
missing the fixtures skip the test.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import stat
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

_IN = struct.Struct("<IIQQIIIHH")        # fuse_in_header (40 bytes)
_OUT = struct.Struct("<IiQ")             # fuse_out_header
_ATTR = struct.Struct("<QQQQQQIIIIIIIIII")   # fuse_attr (88 bytes)
_ENTRY = struct.Struct("<QQQQII")        # fuse_entry_out, before its fuse_attr
_ATTR_OUT = struct.Struct("<QII")        # fuse_attr_out, before its fuse_attr
_OPEN_OUT = struct.Struct("<QII")        # fuse_open_out
_INIT_OUT = struct.Struct("<IIIIHHIIHHII24x")  # fuse_init_out (64 bytes)
_STATFS = struct.Struct("<QQQQQIIII24x")  # fuse_kstatfs (80 bytes)
_DIRENT = struct.Struct("<QQII")         # fuse_dirent, before its name

LOOKUP, FORGET, GETATTR, SETATTR = 1, 2, 3, 4
MKDIR, UNLINK, RMDIR, RENAME, OPEN, READ, WRITE, STATFS, RELEASE = 9, 10, 11, 12, 14, 15, 16, 17, 18
RENAME2 = 45
_SETATTR = struct.Struct("<IIQQQQQQIIII")   # fuse_setattr_in, up to its mode
_FATTR_SIZE, _FATTR_MTIME, _FATTR_MTIME_NOW = 8, 32, 256
FSYNC, FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR, ACCESS, CREATE = 20, 25, 26, 27, 28, 29, 34, 35
INTERRUPT, DESTROY, BATCH_FORGET = 36, 38, 42
_NO_REPLY = {FORGET, BATCH_FORGET, INTERRUPT}

ROOT = 1
MAX_WRITE = 128 * 1024
_MNT_DETACH = 2
_MS_NOSUID, _MS_NODEV = 2, 4


@dataclass
class _Node:
    name: str
    mode: int
    parent: int
    children: dict = field(default_factory=dict)   # name -> node id (folders)
    data: bytearray = field(default_factory=bytearray)
    mtime_ns: int = field(default_factory=time.time_ns)


class FullDriveMount:
    """A FUSE file system at ``point`` (type ``fuse.drive``) that answers EIO to writes, or,
    ``writable``, keeps them in its cache until :meth:`flush`."""

    def __init__(self, point: Path, *, writable: bool = False):
        self.point = point
        self.writable = writable
        self.nodes: dict[int, _Node] = {ROOT: _Node("", stat.S_IFDIR | 0o755, ROOT)}
        self.next_id = ROOT + 1
        self.writes_refused = 0
        #: What Drive has: path below the mount -> bytes, as of the last :meth:`flush`.
        self.on_drive: dict[str, bytes] = {}
        self.disconnected = False
        #: Set to n: the program ends when the n-th write arrives (that write and every
        #: call after it fail: ECONNABORTED, then ENOTCONN).
        self.end_at_write: Optional[int] = None
        self.writes = 0
        #: Set to (opcode, n): the program ends as the n-th call of that kind arrives (a
        #: RENAME: between an atomic write's rename and its fsync; FSYNC, CREATE, MKDIR...).
        self.end_at: Optional[tuple[int, int]] = None
        self.calls: dict[int, int] = {}   # opcode -> calls that arrived
        #: Set to n: :meth:`catch_up` runs as the n-th read arrives (a change shown while a
        #: reader is in the middle of the file).
        self.catch_up_at_read: Optional[int] = None
        self.reads = 0
        #: Set to n: the bytes the mount says are free (``df``: DriveFS and
        #: google-drive-ocamlfuse show Drive's quota there); None: a roomy disk.
        self.free: Optional[int] = None
        #: Changes Drive got from elsewhere that the mount does not show yet (:meth:`catch_up`).
        self._pending: list[tuple[str, bytes, Optional[int]]] = []
        self._drive_mtimes: dict[str, int] = {}   # the times the files on Drive were sent with
        #: Set to n bytes: the size statfs shows (Drive's quota, as DriveFS shows it), its free
        #: part what the files in the mount leave of it; None: a roomy disk.
        self.capacity: Optional[int] = None
        #: opcode -> errno: every call of that kind answers it (a disk or mount that fails
        #: reads: READ -> EIO; OPENDIR -> EIO, a folder that cannot be listed).
        self.fail: dict[int, int] = {}
        #: True: a listing gives no kind (DT_UNKNOWN), as some file systems' do (XFS without
        #: ftype, some FUSE and network ones): a reader must stat each name to know it.
        self.kinds_unknown = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        #: Cleared by :meth:`hang`: the program stops answering (stopped, not ended): every
        #: call into the mount waits until :meth:`answer`.
        self.answering = threading.Event()
        self.answering.set()
        #: Called with each call's opcode as it arrives, before it is answered: a test's hook
        #: that may :meth:`hang` the mount at that very call (it then waits, as the next do).
        self.arriving: Optional[Callable[[int], None]] = None
        self.caller = 0   # the thread that made the call ``arriving`` is given (its id)
        self.node = ROOT  # and the node it is for (``nodes[node].name``: the file read)
        self._fd = -1
        self._thread: Optional[threading.Thread] = None
        #: (source, type) it is mounted as, before :meth:`start`: another FUSE program's
        #: (an rclone remote, gcsfuse) is no Drive mount (localfs.drive_mount).
        self.kind = (b"drive", b"fuse.drive")

    # ----------------------------------------------------------------- mounting
    def start(self) -> "FullDriveMount":
        self.point.mkdir(parents=True, exist_ok=True)
        self._fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        opts = f"fd={self._fd},rootmode=40000,user_id=0,group_id=0".encode()
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.mount(self.kind[0], os.fsencode(self.point), self.kind[1],
                      _MS_NOSUID | _MS_NODEV, opts) != 0:
            err = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(err, os.strerror(err), str(self.point))
        self._thread = threading.Thread(target=self._serve, name="drive-mount", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.umount2(os.fsencode(self.point), _MNT_DETACH)
        self._end_serving()

    def disconnect(self) -> None:
        """The program behind the mount ends: its end of ``/dev/fuse`` closes and the kernel
        answers every later call into the mount ENOTCONN. Nothing more reaches Drive."""
        self.disconnected = True
        self._end_serving()

    def hang(self) -> None:
        """The program stops answering (a DriveFS that hangs, not one that ended): every
        call into the mount waits until :meth:`answer`."""
        self.answering.clear()

    def answer(self) -> None:
        """It answers again: the calls that waited go on."""
        self.answering.set()

    def _end_serving(self) -> None:
        self._stop.set()
        self.answering.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def flush(self) -> None:
        """What ``drive.flush_and_unmount()`` waits for: every file in the cache sent to
        Drive (:attr:`on_drive`)."""
        self.send(lambda path: True)

    def send(self, which: Callable[[str], bool]) -> None:
        """DriveFS sends the cached files ``which(path)`` accepts to Drive, the others not
        yet: it uploads each file on its own, small ones first, so a folder's files reach
        Drive in no given order (a stamp or sidecar before the file it describes)."""
        with self._lock:
            files = dict(self._files())
            for path in [p for p in self.on_drive if p not in files and which(p)]:
                del self.on_drive[path]   # removed from the mount: from Drive too
                self._drive_mtimes.pop(path, None)
            for path, node in files.items():
                if which(path):
                    self.on_drive[path] = bytes(node.data)
                    # Drive's modifiedTime: milliseconds (what a new mount shows)
                    self._drive_mtimes[path] = node.mtime_ns // 10**6 * 10**6

    def sent_at(self, path: str, mtime_ns: int) -> None:
        """Drive's modifiedTime of ``path`` (on Drive) is ``mtime_ns``: the time DriveFS sent
        it with, chosen by the test (one of Drive's milliseconds that falls on a second)."""
        with self._lock:
            assert path in self.on_drive, path
            self._drive_mtimes[path] = mtime_ns

    def remount(self, grain: int = 10**6) -> "FullDriveMount":
        """``drive.mount(point, force_remount=True)`` after this mount stopped: a new mount
        at the same point that shows what Drive has (:attr:`on_drive`, with the times the
        files were sent with, in Drive's milliseconds, or truncated to ``grain``: whole
        seconds, as DriveFS shows them by some accounts); what this one had not sent is
        gone."""
        self.stop()
        back = FullDriveMount(self.point, writable=self.writable)
        for path, data in self.on_drive.items():
            sent = self._drive_mtimes.get(path)
            back._pending.append((path, data, None if sent is None else sent // grain * grain))
        back.catch_up()
        back.on_drive, back._drive_mtimes = dict(self.on_drive), dict(self._drive_mtimes)
        return back.start()

    def change_on_drive(self, path: str, data: bytes, mtime_ns: Optional[int] = None) -> None:
        """Drive gets ``path`` (below the mount: ``MyDrive/a/b``) from elsewhere (another
        machine's upload, the web UI): :attr:`on_drive` has it now, the mount shows it at
        :meth:`catch_up` only, the file's new revision under the same node (as Drive keeps
        the file id), with ``mtime_ns`` (an upload that keeps the local mtime, as rclone and
        drivestage do) or the time it is shown."""
        with self._lock:
            self.on_drive[path] = bytes(data)
            self._pending.append((path, bytes(data), mtime_ns))

    def catch_up(self) -> None:
        """The mount shows what Drive got since the last catch-up: DriveFS asks Drive for
        changes now and then, and a change reaches the mount minutes after Drive has it
        (astrada/google-drive-ocamlfuse issue 450: "10 minutes for changes on drive to
        propagate"; the same lag is reported of Colab's mount)."""
        with self._lock:
            for path, data, mtime_ns in self._pending:
                *folders, name = path.split("/")
                parent = ROOT
                for part in folders:
                    children = self.nodes[parent].children
                    parent = children[part] if part in children else \
                        self._make(parent, part, stat.S_IFDIR | 0o755)
                children = self.nodes[parent].children
                node = children[name] if name in children else \
                    self._make(parent, name, stat.S_IFREG | 0o644)
                self.nodes[node].data[:] = data
                self.nodes[node].mtime_ns = mtime_ns if mtime_ns is not None else time.time_ns()
            self._pending.clear()

    def cached(self) -> dict[str, bytes]:
        """What the mount shows: path below the mount -> bytes (Drive may not have it yet)."""
        with self._lock:
            return {path: bytes(node.data) for path, node in self._files()}

    def _files(self, nodeid: int = ROOT, prefix: str = "") -> Iterator[tuple[str, _Node]]:
        for name, child in self.nodes[nodeid].children.items():
            node = self.nodes[child]
            if stat.S_ISDIR(node.mode):
                yield from self._files(child, f"{prefix}{name}/")
            else:
                yield f"{prefix}{name}", node

    # ----------------------------------------------------------------- serving
    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.05)
            if not ready:
                continue
            try:
                msg = os.read(self._fd, MAX_WRITE + 64 * 1024)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.EINTR, errno.EAGAIN):
                    continue  # the request was interrupted before we read it
                return  # ENODEV: unmounted
            if self.arriving is not None:
                self.caller = _IN.unpack_from(msg)[6]   # (the calling thread's id)
                self.node = _IN.unpack_from(msg)[3]
                self.arriving(_IN.unpack_from(msg)[1])
            while not self.answering.wait(0.05) and not self._stop.is_set():
                pass   # hung: the request waits (a disconnect meanwhile leaves it unanswered)
            if self._stop.is_set():
                return
            _, opcode, unique, nodeid, *_ = _IN.unpack_from(msg)
            body = msg[_IN.size:]
            if opcode in _NO_REPLY:
                continue
            self.calls[opcode] = self.calls.get(opcode, 0) + 1
            if opcode == WRITE and self.end_at_write is not None:
                self.writes += 1
            if (opcode == WRITE and self.end_at_write is not None
                    and self.writes >= self.end_at_write) or \
                    self.end_at == (opcode, self.calls[opcode]):
                self.disconnected = True
                os.close(self._fd)   # unanswered: the kernel aborts it
                self._fd = -1
                return
            if opcode == READ:
                self.reads += 1
                if self.reads == self.catch_up_at_read:
                    self.catch_up()
            try:
                with self._lock:
                    reply = self._answer(opcode, nodeid, body)
                error = 0
            except OSError as exc:
                reply, error = b"", -exc.errno
            except Exception:  # noqa: BLE001 - a request left unanswered hangs its caller
                reply, error = b"", -errno.EIO
            try:
                os.write(self._fd, _OUT.pack(_OUT.size + len(reply), error, unique) + reply)
            except OSError:
                pass  # the caller was interrupted meanwhile
            if opcode == DESTROY:
                return

    def _attr(self, nodeid: int) -> bytes:
        node = self.nodes.get(nodeid)
        if node is None:
            raise OSError(errno.ENOENT, "no such node")
        sec, nsec = divmod(node.mtime_ns, 10**9)
        nlink = 2 if stat.S_ISDIR(node.mode) else 1
        size = len(node.data)
        return _ATTR.pack(nodeid, size, (size + 511) // 512, sec, sec, sec, nsec, nsec, nsec,
                          node.mode, nlink, 0, 0, 0, 4096, 0)

    def _entry(self, nodeid: int) -> bytes:
        return _ENTRY.pack(nodeid, 0, 0, 0, 0, 0) + self._attr(nodeid)

    def _child(self, parent: int, name: str) -> int:
        folder = self.nodes.get(parent)
        if folder is None or name not in folder.children:
            raise OSError(errno.ENOENT, name)
        return folder.children[name]

    def _make(self, parent: int, name: str, mode: int) -> int:
        folder = self.nodes[parent]
        if name in folder.children:
            raise OSError(errno.EEXIST, name)
        nodeid, self.next_id = self.next_id, self.next_id + 1
        self.nodes[nodeid] = _Node(name, mode, parent)
        folder.children[name] = nodeid
        return nodeid

    def _setattr(self, nodeid: int, body: bytes) -> None:
        valid, _pad, _fh, size, _owner, _atime, mtime, _ctime, _ans, mtimensec, *_ = \
            _SETATTR.unpack_from(body)
        node = self.nodes[nodeid]
        if valid & _FATTR_SIZE:
            del node.data[size:]
            node.data.extend(b"\0" * (size - len(node.data)))
        if valid & _FATTR_MTIME_NOW:
            node.mtime_ns = time.time_ns()
        elif valid & _FATTR_MTIME:
            node.mtime_ns = mtime * 10**9 + mtimensec

    def _rename(self, parent: int, name: str, newdir: int, newname: str) -> None:
        child = self._child(parent, name)
        target = self.nodes[newdir].children.get(newname)
        if target is not None:
            del self.nodes[target]
        del self.nodes[parent].children[name]
        self.nodes[newdir].children[newname] = child
        node = self.nodes[child]
        node.name, node.parent = newname, newdir

    def _listing(self, nodeid: int) -> Iterator[tuple[int, str, int]]:
        node = self.nodes[nodeid]
        yield nodeid, ".", stat.S_IFDIR
        yield node.parent, "..", stat.S_IFDIR
        for name, child in sorted(node.children.items()):
            yield child, name, stat.S_IFMT(self.nodes[child].mode)

    def _answer(self, opcode: int, nodeid: int, body: bytes) -> bytes:
        def name_at(offset: int) -> str:
            return body[offset:].split(b"\0", 1)[0].decode()

        if opcode in self.fail:
            raise OSError(self.fail[opcode], os.strerror(self.fail[opcode]))
        if opcode == INIT:
            major, minor = struct.unpack_from("<II", body)
            return _INIT_OUT.pack(7, min(minor, 31), 0, 0, 16, 12, MAX_WRITE, 1, 0, 0, 0, 0)
        if opcode == LOOKUP:
            return self._entry(self._child(nodeid, name_at(0)))
        if opcode == SETATTR:
            self._setattr(nodeid, body)
        if opcode in (GETATTR, SETATTR):
            return _ATTR_OUT.pack(0, 0, 0) + self._attr(nodeid)
        if opcode in (RENAME, RENAME2):
            newdir, = struct.unpack_from("<Q", body)
            names = body[8 if opcode == RENAME else 16:].split(b"\0")
            self._rename(nodeid, names[0].decode(), newdir, names[1].decode())
            return b""
        if opcode == STATFS:
            if self.free is not None:   # Drive's quota, as the test says it is
                free = self.free // 4096
                return _STATFS.pack(1 << 24, free, free, 1 << 20, 1 << 19, 4096, 255, 4096, 0)
            if self.capacity is None:   # a roomy disk: the mount does not know Drive's quota
                return _STATFS.pack(1 << 24, 1 << 23, 1 << 23, 1 << 20, 1 << 19, 4096, 255,
                                    4096, 0)
            used = sum(len(node.data) for _path, node in self._files())
            blocks, free = self.capacity // 4096, max(0, self.capacity - used) // 4096
            return _STATFS.pack(blocks, free, free, 1 << 20, 1 << 19, 4096, 255, 4096, 0)
        if opcode == CREATE:
            _flags, mode = struct.unpack_from("<II", body)
            child = self._make(nodeid, name_at(16), stat.S_IFREG | (mode & 0o7777))
            return self._entry(child) + _OPEN_OUT.pack(0, 0, 0)
        if opcode == MKDIR:
            mode, = struct.unpack_from("<I", body)
            return self._entry(self._make(nodeid, name_at(8), stat.S_IFDIR | (mode & 0o7777)))
        if opcode in (UNLINK, RMDIR):
            child = self._child(nodeid, name_at(0))
            del self.nodes[nodeid].children[name_at(0)]
            del self.nodes[child]
            return b""
        if opcode in (OPEN, OPENDIR):
            return _OPEN_OUT.pack(0, 0, 0)
        if opcode == READDIR:
            _fh, offset, size = struct.unpack_from("<QQI", body)
            out = b""
            for i, (child, name, kind) in enumerate(self._listing(nodeid)):
                if i < offset:
                    continue
                raw = name.encode()
                kind = 0 if self.kinds_unknown else kind
                dirent = _DIRENT.pack(child, i + 1, len(raw), kind >> 12) + raw
                dirent += b"\0" * (-len(dirent) % 8)
                if len(out) + len(dirent) > size:
                    break
                out += dirent
            return out
        if opcode == READ:
            _fh, offset, size = struct.unpack_from("<QQI", body)
            return bytes(self.nodes[nodeid].data[offset:offset + size])
        if opcode == WRITE:
            if not self.writable:
                self.writes_refused += 1
                raise OSError(errno.EIO, "Drive is full")
            _fh, offset, size = struct.unpack_from("<QQI", body)
            node = self.nodes[nodeid]
            node.data[offset:offset + size] = body[40:40 + size]
            node.mtime_ns = time.time_ns()
            return struct.pack("<II", size, 0)
        if opcode in (FLUSH, RELEASE, RELEASEDIR, FSYNC, ACCESS, DESTROY):
            return b""
        raise OSError(errno.ENOSYS, "not served")


def _mounted(point: Path, writable: bool) -> Iterator[FullDriveMount]:
    mount = FullDriveMount(point, writable=writable)
    try:
        mount.start()
    except OSError as exc:
        pytest.skip(f"a FUSE mount is needed to stand in for Colab's Drive mount: {exc}")
    try:
        yield mount
    finally:   # (a test's ``for mount in _mounted(…)`` that failed closes it: no mount left)
        mount.stop()


@pytest.fixture
def drive_mount(tmp_path):
    """A started :class:`FullDriveMount` at ``tmp_path/content/drive`` whose Drive is full
    (the test is skipped where FUSE cannot be mounted)."""
    yield from _mounted(tmp_path / "content" / "drive", writable=False)


@pytest.fixture
def working_drive_mount(tmp_path):
    """A started, writable :class:`FullDriveMount` at ``tmp_path/content/drive`` (skipped
    where FUSE cannot be mounted)."""
    yield from _mounted(tmp_path / "content" / "drive", writable=True)
