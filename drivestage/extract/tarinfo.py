"""Tar headers read with bounds (:class:`BoundedInfo`, the ``tarinfo`` class of every tar
drivestage opens).

``tarfile`` reads a pax or GNU long-name header whole into memory, as large as its header
block declares, and a GNU sparse member's map as long as the archive makes it: a tar.gz of a
few MB that declares gigabytes of zeros as one header took twice that in memory while its
member list was read (an out-of-memory kill of the notebook), before any size or space check
could see a member. Python before 3.11.10 / 3.12.6 also searches a pax header with a regular
expression that takes time in the square of a run of digits (CVE-2024-6232): a 1 MiB header
of digits, a few KB compressed, held a pull for most of an hour. Each is refused here with
:class:`tarfile.ReadError`, which the callers word as a tar they cannot read.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import tarfile
from typing import IO, Any, Iterator, cast

from drivestage.extract.formats import compression

#: The largest pax or GNU long-name header read: a member's names and attributes take a few
#: KB (a path of 256 folders of 255 bytes, the most a member may have, 64 KiB).
MAX_EXTENDED_HEADER = 1 << 20
#: The longest run of digits a pax header may hold (a length or a number takes 20 at most):
#: what the affected Pythons' search takes in the square of.
_MAX_DIGITS = 1024
#: The most that a header's runs of more than 20 digits may add up to in their squares:
#: that search takes time in the square of each run, so a header of a thousand runs of
#: 1,024 took 3 s, and an archive of one such header per member (2 KB of tar.gz each)
#: hours (attackds32). A tar's numbers take 20 digits at most; the shorter runs, not
#: counted, cost a few times the header's size at most. (The runs are found in one pass: a
#: search for a run longer than the bound took time in the square of each run too.)
_DIGIT_WORK = 1 << 22
_RUNS = re.compile(rb"\d{2,}")
#: What one archive's extended headers may take to read in all (:func:`_cost`): 64 MiB, and
#: 8 KiB more for each member listed. Each header is bounded, not their number: a tar.gz of
#: a few MB, one near-1-MiB header per member, held the CPU for minutes while its member
#: list was read (attackds32). Real tars take far less: GNU tar's pax format, with three
#: extended attributes a file (a 300-byte one among them), 0.6 KB a member (1.2 K by
#: :func:`_cost`); macOS's bsdtar, which writes each attribute twice, about 2.5 KB. The
#: base is for a few odd large ones (a 1 MiB global comment, a resource fork). At the
#: bound's worst, listing takes about 25 ms per MiB of it (0.2 ms a member).
MAX_EXTENDED_BASE = 64 << 20
MAX_EXTENDED_PER_MEMBER = 8 << 10
#: What a pax record costs ``tarfile`` beyond its bytes (a regular expression's match and two
#: decodes, about as long as reading 32 bytes of a long value).
_RECORD_COST = 32
#: The most keywords a member's pax headers (the archive's global ones with its own) may
#: hold: ``tarfile`` goes through all of them for every member and kept a copy in each (a
#: global header of 87,000 keywords, a few hundred KB of tar.gz, then a member per KB).
MAX_PAX_KEYWORDS = 1024
#: The most sparse map entries one archive may hold (each a tuple in memory until the merge).
MAX_SPARSE = 1_000_000
#: The most extended headers in a row before a member: ``tarfile`` reads each next one in a
#: call of its own (a few hundred tiny ones, a few KB of tar.gz, were a RecursionError and a
#: traceback: attackds32); a tar writes three at most (a global and a member's pax header,
#: or a GNU long name and long link name).
MAX_HEADER_CHAIN = 16
_BLOCK = tarfile.BLOCKSIZE
_nti = getattr(tarfile, "nti")   # (the header's number format, as tarfile reads it)


class BoundedInfo(tarfile.TarInfo):
    """A :class:`tarfile.TarInfo` whose extended headers and sparse maps are bounded."""

    _reading: Any  # (the TarFile an extended header is read from, while it is)

    def _proc_member(self, tf: Any) -> Any:
        """A header and what it stands for, neither of a size below zero: base-256 numbers
        have a sign, and ``tarfile`` took it (an extended header's read the rest of the
        archive, or failed with a TypeError; a member's moved the next header back and took
        its size off the total the free-space check weighs: attackds32)."""
        _check_size(self.size)
        member = getattr(super(), "_proc_member")(tf)
        _check_size(member.size)
        return member

    def _proc_pax(self, tf: Any) -> Any:
        return self._checked(tf, getattr(super(), "_proc_pax"), "pax")

    def _proc_gnulong(self, tf: Any) -> Any:
        return self._checked(tf, getattr(super(), "_proc_gnulong"), "GNU long-name")

    def _apply_pax_info(self, pax_headers: Any, encoding: str, errors: str) -> None:
        if len(pax_headers) > MAX_PAX_KEYWORDS:
            raise tarfile.ReadError(f"its pax headers hold more than {MAX_PAX_KEYWORDS} "
                                    "keywords for one member, which no tar writes")
        getattr(super(), "_apply_pax_info")(pax_headers, encoding, errors)
        self.pax_headers = {}  # (read here for none of them: a copy per member is not kept)

    def _proc_gnusparse_00(self, next: Any, *rest: Any) -> None:
        getattr(super(), "_proc_gnusparse_00")(next, *rest)
        _count_sparse(self._reading, len(next.sparse), done=True)

    def _proc_gnusparse_01(self, next: Any, *rest: Any) -> None:
        """A pax sparse member of format 0.1 (0.0 above): its map is read whole from the
        header by ``tarfile``, at most 1 MiB, but counted with the archive's others (a
        1 MiB map of ``0,1,…``, a KB of tar.gz a member, kept 19 MB of tuples each:
        attackds32)."""
        getattr(super(), "_proc_gnusparse_01")(next, *rest)
        _count_sparse(self._reading, len(next.sparse), done=True)

    def _checked(self, tf: Any, proc: Any, kind: str) -> Any:
        """``proc(tf)`` once the header's bytes are read and found within the bounds: it
        reads them again from a :class:`_Replay` of them."""
        chain = getattr(tf, "_drivestage_chain", 0)
        if chain >= MAX_HEADER_CHAIN:
            raise tarfile.ReadError(f"more than {MAX_HEADER_CHAIN} pax or GNU long-name "
                                    "headers in a row before a member, which no tar writes")
        if self.size > MAX_EXTENDED_HEADER:
            raise tarfile.ReadError(
                f"a {kind} header declares {self.size:,} bytes, more than the "
                f"{MAX_EXTENDED_HEADER:,} drivestage reads (a member's names and attributes "
                "take a few KB)")
        data = tf.fileobj.read(_blocks(self.size))
        runs = [len(m) for m in _RUNS.findall(data)]
        if max(runs, default=0) > _MAX_DIGITS:
            raise tarfile.ReadError(f"a {kind} header holds a run of more than {_MAX_DIGITS} "
                                    "digits, which no tar writes")
        if sum(n * n for n in runs if n > 20) > _DIGIT_WORK:
            raise tarfile.ReadError(f"a {kind} header holds more long runs of digits than "
                                    "any tar writes")
        _count_extended(tf, _cost(data, runs))
        real = tf.fileobj
        tf.fileobj = _Replay(real, data)
        setattr(tf, "_drivestage_chain", chain + 1)
        self._reading = tf  # (for the sparse maps it counts)
        try:
            return proc(tf)
        finally:
            tf.fileobj = real
            setattr(tf, "_drivestage_chain", chain)
            del self._reading

    def _proc_sparse(self, tf: Any) -> Any:
        """An old GNU sparse member: its map's extension blocks, counted (``tarfile``'s
        own loop, which appended 21 entries per 512 bytes of a highly compressible tar)."""
        structs, extended, origsize = getattr(self, "_sparse_structs")
        delattr(self, "_sparse_structs")
        while extended:
            buf = tf.fileobj.read(_BLOCK)
            if len(buf) != _BLOCK:
                raise tarfile.ReadError("unexpected end of data in a sparse member's map")
            for pos in range(0, 21 * 24, 24):
                try:
                    offset = _nti(buf[pos:pos + 12])
                    numbytes = _nti(buf[pos + 12:pos + 24])
                except ValueError:
                    break
                if offset and numbytes:
                    structs.append((offset, numbytes))
            _count_sparse(tf, len(structs))
            extended = bool(buf[504])
        _count_sparse(tf, len(structs), done=True)
        setattr(self, "sparse", structs)
        self.offset_data = tf.fileobj.tell()
        tf.offset = self.offset_data + _blocks(self.size)
        self.size = origsize
        return self

    def _proc_gnusparse_10(self, next: Any, pax_headers: Any,
                           tf: Any) -> None:
        """A pax sparse member of format 1.0: its map, at the front of its data, bounded in
        entries and in the length of a line (``tarfile`` grew a line 512 bytes at a time)."""
        numbers: list[int] = []
        buf = b""
        wanted = None
        while wanted is None or len(numbers) < wanted:
            while b"\n" not in buf:
                more = tf.fileobj.read(_BLOCK)
                if not more or len(buf) > 64:
                    raise tarfile.ReadError("a sparse member's map is truncated or malformed")
                buf += more
            line, buf = buf.split(b"\n", 1)
            try:
                value = int(line)
            except ValueError:
                raise tarfile.ReadError("a sparse member's map is malformed") from None
            if wanted is None:
                wanted = 2 * value
                _count_sparse(tf, value)
            else:
                numbers.append(value)
        _count_sparse(tf, len(numbers) // 2, done=True)
        next.offset_data = tf.fileobj.tell()
        next.sparse = list(zip(numbers[::2], numbers[1::2]))


class _Counted:
    """What stands for ``TarFile.members`` in a tar read front to back: how many members
    were read, none of them kept (``tarfile`` keeps every ``TarInfo`` it reads, with its
    names, 0.5 KB a member: 0.75 GB for the 1,500,000 an archive may have)."""

    def __init__(self, count: int):
        self.count = count

    def append(self, member: object) -> None:
        self.count += 1

    def __len__(self) -> int:
        return self.count


def each_member(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """``tf``'s members, front to back, each let go once the caller is done with it (see
    :class:`_Counted`; a hard link's target is not looked up in them: drivestage makes
    hard links itself). Use it, not ``iter(tf)``, which reads the kept list."""
    kept = getattr(tf, "members")   # (not in the stubs)
    if not isinstance(kept, _Counted):
        setattr(tf, "members", _Counted(len(kept)))
    while True:
        member = tf.next()
        if member is None:
            return
        yield member


class ExtendedHeadersError(tarfile.ReadError):
    """An archive whose extended headers take more to read than :data:`MAX_EXTENDED_BASE`
    and :data:`MAX_EXTENDED_PER_MEMBER` allow (not a truncated or corrupt one)."""


def advice(exc: BaseException) -> str:
    """What to do about a tar that ``exc`` stopped the reading of."""
    if isinstance(exc, ExtendedHeadersError):
        return ("make it again without extended attributes (GNU tar --no-xattrs --no-acls, "
                "bsdtar --no-xattrs --no-mac-metadata) or split it into smaller archives, "
                "and upload it")
    return "it is probably truncated or corrupt: make the archive again and upload it"


def _cost(data: bytes, runs: list[int]) -> int:
    """What reading the extended header ``data`` costs ``tarfile``, in bytes of a long value
    that take as long: its records (many tiny ones took it 7 times as long as their bytes)
    and its runs of digits (searched in time in the square of each on the Pythons the
    module's docstring names: 20-digit ones, the longest allowed a number, 6 times)."""
    return len(data) + _RECORD_COST * data.count(b"\n") + sum(n * n for n in runs) // 2


def _count_extended(tf: Any, cost: int) -> None:
    """Add ``cost`` to what ``tf``'s extended headers took, and refuse the archive once it is
    past what its members listed so far allow."""
    total = getattr(tf, "_drivestage_extended", 0) + cost
    members = len(getattr(tf, "members", ()))
    if total > MAX_EXTENDED_BASE + MAX_EXTENDED_PER_MEMBER * members:
        raise ExtendedHeadersError(
            f"its pax and GNU long-name headers take more to read than drivestage gives one "
            f"archive ({MAX_EXTENDED_BASE >> 20} MiB, and "
            f"{MAX_EXTENDED_PER_MEMBER >> 10} KiB a member: a tar writes a few hundred bytes "
            f"a member), past it after {members:,} members")
    setattr(tf, "_drivestage_extended", total)


def _check_size(size: int) -> None:
    if size < 0:
        raise tarfile.ReadError(f"a header declares a size of {size:,} bytes, which no tar "
                                "writes")


def _blocks(size: int) -> int:
    """``size`` rounded up to whole 512-byte blocks (``TarInfo._block``)."""
    return -(-size // _BLOCK) * _BLOCK


def _count_sparse(tf: Any, entries: int, done: bool = False) -> None:
    """Refuse a map that would take the archive's sparse entries past :data:`MAX_SPARSE`
    (``done``: ``entries`` are the member's, kept: added to the archive's count)."""
    before = getattr(tf, "_drivestage_sparse", 0)
    if before + entries > MAX_SPARSE:
        raise tarfile.ReadError(f"its sparse members' maps hold more than {MAX_SPARSE:,} "
                                "entries, more than drivestage reads")
    if done:
        setattr(tf, "_drivestage_sparse", before + entries)


class _Replay:
    """``fileobj`` with ``data``, read from it already, in front: what ``tarfile`` reads
    next reads those bytes first."""

    def __init__(self, fileobj: Any, data: bytes):
        self.fileobj, self.data = fileobj, data

    def read(self, size: int = -1) -> bytes:
        if not self.data:
            return bytes(self.fileobj.read(size))
        if size < 0:
            out, self.data = self.data + self.fileobj.read(), b""
            return bytes(out)
        out, self.data = self.data[:size], self.data[size:]
        if len(out) < size:
            out += self.fileobj.read(size - len(out))
        return bytes(out)

    def tell(self) -> int:
        return int(self.fileobj.tell()) - len(self.data)

    def seek(self, pos: int, whence: int = 0) -> int:
        self.data = b""
        return int(self.fileobj.seek(pos, whence))


# tarfile's stream slices its buffer on every read: a big buffer makes header reads slow.
TAR_BUFSIZE = 64 * 1024


class _StreamedTar(tarfile.TarFile):
    """A tar read front to back that closes what it reads from (see :func:`open_tar_stream`)."""

    owned: "list[io.IOBase]" = []
    tarinfo = BoundedInfo

    def close(self) -> None:
        try:
            super().close()
        finally:
            for f in reversed(self.owned):
                f.close()


def open_tar_stream(src: "str | io.RawIOBase") -> tarfile.TarFile:
    """A tar (plain, gzip, bzip2 or xz) read front to back from a path or a raw file object,
    decompressed by the gzip / bz2 / lzma readers, whose output per read is bounded:
    tarfile's own stream (``r|*``) decompresses each block of input whole and copies what
    is left of it on every read, minutes of CPU for a small archive of a few hundred MB of
    zeros (a bomb the free-space check would refuse). Closing it closes what it opened."""
    raw = open(src, "rb", buffering=0) if isinstance(src, str) else src
    owned: list[io.IOBase] = [io.BufferedReader(raw, TAR_BUFSIZE)]
    try:
        buffered = owned[0]
        assert isinstance(buffered, io.BufferedReader)
        kind = compression(buffered.peek(6)[:6])
        if kind == "gz":
            owned.append(gzip.GzipFile(fileobj=buffered, mode="rb"))
        elif kind == "bz2":
            owned.append(bz2.BZ2File(buffered))
        elif kind == "xz":
            owned.append(lzma.LZMAFile(buffered))
        tf = _StreamedTar.open(fileobj=cast(IO[bytes], owned[-1]), mode="r|",
                               bufsize=TAR_BUFSIZE)
    except BaseException:
        for f in reversed(owned):
            f.close()
        raise
    assert isinstance(tf, _StreamedTar)
    tf.owned = owned
    return tf
