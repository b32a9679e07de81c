"""An archive downloaded and extracted at once (``pull --extract`` of a file to fetch).

:class:`Unpacking` starts the download (:class:`drivestage.download.Download`) and, for a
file named like an archive, an extraction that follows it
(:class:`drivestage.extract.overlapped.Overlapped`): for a zip, the central directory is
fetched first with one ranged request (the last bytes of the file, and the rest of the
directory when it is longer), then the streams fetch the members from the front while the
member list is checked and the members are written into the temporary folder; a tar is read as it arrives. Nothing reaches DEST
before the download's md5 is verified: :meth:`Unpacking.extract` merges then. If the
following fails for any reason, or the download had to start again from zero, the verified
archive is extracted the usual way (:func:`drivestage.extract.extract`), which also reports
whatever is wrong with it.
"""
from __future__ import annotations

import logging
import os
import shutil
from typing import Callable, Collection, Iterable, Mapping, Optional, Sequence

from drivestage.download import Download, DownloadResult
from drivestage.errors import DestChangedError, DiskSpaceError, DriveStageError, \
    UserFilesError
from drivestage.extract import ExtractResult, MemberRecord, extract
from drivestage.extract.job import Turn
from drivestage.extract import members
from drivestage.extract.occupied import Recorded
from drivestage.extract.overlapped import FALLBACK, Arrival, FirstArrival, Overlapped
from drivestage.interrupts import Flag
from drivestage.store import ProgressFn, RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

_TAR_NAMES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
#: The first request of a zip: its last bytes, where the central directory is (1 % of the
#: file, at least all that zipfile reads of its end records, and at most 16 MiB: a
#: 20,000-member directory is about 2 MB). 64 KiB missed a zip64 record put before the
#: tail by a long comment: the member list was read where zeros stood (attackzip45).
_TAIL_MIN, _TAIL_MAX = members.EOCD_TAIL, 16 << 20


class Unpacking:
    """The download of ``entry`` to ``target`` and, with ``extract``, the extraction into
    ``dest`` that follows it; :meth:`download`, then :meth:`extract`."""

    def __init__(self, store: RemoteStore, entry: RemoteEntry, target: str, dest: str, *,
                 extract: bool, jobs: Optional[int], chunk_size: Optional[int],
                 progress: Optional[ProgressFn], describe: str, reserve: int,
                 lock_dir: Optional[str], extract_progress: Optional[ProgressFn] = None,
                 protected: Collection[str] = (), replaceable: Iterable[MemberRecord] = (),
                 turn: Optional[Turn] = None, kept: Mapping[str, MemberRecord] = {},
                 recorded: Optional[Recorded] = None):
        self.entry, self.dest, self.reserve, self.lock_dir = entry, dest, reserve, lock_dir
        #: What earlier extractions wrote (the stamps; None with --force): see extract.Job.
        self.recorded = recorded
        self.replaceable = list(replaceable)
        #: Members of this very version in place in DEST (a rerun that downloads the archive
        #: again: deleted after its extraction, or changed): not written again. A tar that
        #: is followed as it arrives is written whole.
        self.kept = dict(kept)
        self.turn = turn  # what the merge waits on (a folder pull's overlapping archives)
        self.protected = {target, *protected}  # no member replaces a staged file
        self.describe, self.extract_progress = describe, extract_progress
        self.dl = Download(store, entry, target, jobs=jobs, chunk_size=chunk_size,
                           progress=progress, describe=describe)
        self.follower: Optional[Overlapped] = None
        self.generation = self.dl.generation
        if extract and entry.size > 0:
            try:
                self.follower = self._follow(entry.name.lower())
            except BaseException:  # a Ctrl-C too, even as _follow returns: what it made goes
                self.close()
                raise

    def _adopt(self, follower: Overlapped) -> None:
        """Known here from the moment it exists (before its thread starts), so that close()
        abandons it whenever a Ctrl-C lands: one between ``Overlapped.zip`` returning and
        its result being stored left its thread, temporary folder and descriptors behind."""
        self.follower = follower

    def _follow(self, name: str) -> Optional[Overlapped]:
        size = self.entry.size
        partial = self.dl.partial

        def free(path: str) -> int:  # the rest of the download will take its share too
            # What is still to come, asked when asked: the bytes that arrived are on disk
            # already (in the partial's blocks, which the free space has lost). A count
            # taken at the start asked for them twice, and refused a zip that fit.
            try:
                held = os.stat(partial).st_blocks * 512
            except OSError:  # renamed into place: the download is complete
                held = size
            return shutil.disk_usage(path).free - self.reserve - max(0, size - held)

        # The follower's own stop: its waits for bytes end with it (a Ctrl-C as it starts
        # waited for the first member's bytes, seconds on a slow link, before it stopped).
        stop = Flag()

        def arrived(start: int, end: int) -> bool:
            return self.dl.wait_for(start, end, self.generation, stop.is_set)

        def first_arrived(spans: Sequence[tuple[int, int]]) -> int:
            return self.dl.first_here(spans, self.generation, stop.is_set)

        if name.endswith(".zip"):
            return self._follow_zip(arrived, first_arrived, free, stop)
        if not name.endswith(_TAR_NAMES):
            return None
        # The member list is read as the tar arrives; one refused stops the download.
        self.dl.begin()
        try:
            return Overlapped.tar(self.dl.partial, size, self.dest, arrived,
                                  lock_dir=self.lock_dir, free_bytes=free,
                                  progress=self.extract_progress, protected=self.protected,
                                  label=self.dl.target, replaceable=self.replaceable,
                                  identity=self.dl.identity(), stop=stop,
                                  adopt=self._adopt, turn=self.turn,
                                  recorded=self.recorded)
        except (DiskSpaceError, UserFilesError):
            self.dl.forget(size, size)  # (stops the streams; no range dropped)
            raise
        except FALLBACK + (DriveStageError,) as exc:
            log.debug("%s: extracting after the download (%s)", self.describe, exc)
        return None

    def _follow_zip(self, arrived: Arrival, first_arrived: FirstArrival,
                    free: Callable[[str], int], stop: Flag) -> Optional[Overlapped]:
        size = self.entry.size
        # Made first (a big zip's worker processes then start, and their interpreters load,
        # while the central directory is fetched: on Drive every request waits a tenth of
        # a second or more before its first byte); adopted, so close() ends it whatever
        # fails from here on.
        try:
            follower = Overlapped.open_zip(self.dl.partial, size, self.dest, arrived,
                                           lock_dir=self.lock_dir, free_bytes=free,
                                           progress=self.extract_progress,
                                           protected=self.protected, label=self.dl.target,
                                           replaceable=self.replaceable,
                                           identity=self.dl.identity(),
                                           first_arrived=first_arrived, stop=stop,
                                           adopt=self._adopt, turn=self.turn, kept=self.kept,
                                           recorded=self.recorded)
        except (DiskSpaceError, UserFilesError):
            raise
        except FALLBACK + (DriveStageError,) as exc:   # (another file at the partial's
            # name: extracted once verified, as before overlap41 opened it here)
            log.debug("%s: extracting after the download (%s)", self.describe, exc)
            return None
        # The streams fetch from the front while the tail comes.
        tail = max(0, size - max(_TAIL_MIN, min(size // 100, _TAIL_MAX)))
        self.dl.fetch_first(tail, size, begin=True)
        start = _directory_start(self.dl.read(tail, size), size)
        if start is None:  # no end record, or a directory over the cap: see there
            follower.abandon()
            return None
        directory = min(start, tail)  # where the bytes the member list is read from begin
        if start < tail:
            self.dl.fetch_first(start, tail)
        # The member list is read and checked (a 20,000-member zip: about 0.5 s) while the
        # streams fetch; a member list refused, or DEST too small, stops them again.
        self.dl.begin()
        try:
            return follower if follower.follow_zip() else None
        except (DiskSpaceError, UserFilesError):
            # Before the download: no point fetching what cannot be extracted. But the sizes
            # came from the directory's bytes, which nothing verified yet (an answer altered
            # once, a partial changed on disk): the rerun fetches them again rather than
            # failing on them for good.
            self.dl.forget(directory, size)
            raise
        except FALLBACK + (DriveStageError,) as exc:
            log.debug("%s: extracting after the download (%s)", self.describe, exc)
        return None

    def download(self) -> DownloadResult:
        """The download, verified and in place (the extraction goes on meanwhile)."""
        try:
            result = self.dl.run()
        except BaseException:
            if self.follower is not None:
                self.follower.abandon()
                self.follower = None
            raise
        if result.restarted and self.follower is not None:
            self.follower.abandon()  # it followed bytes that were thrown away
            self.follower = None
        return result

    def extract(self, target: str, replaceable: Iterable[MemberRecord] = (),
                recorded: Optional[Recorded] = None) -> ExtractResult:
        """The extraction into DEST of the verified archive at ``target``: what followed the
        download is merged, or, when nothing did (or it failed), ``target`` is extracted.
        ``replaceable``, ``recorded``: see :func:`drivestage.extract.extract` (what followed
        the download had those given when the download began)."""
        # Left in self.follower for close() (a no-op once finish() has run): a Ctrl-C at
        # the very start of finish() left it running, its temporary folder and descriptors
        # with it, once this had let go of it.
        follower = self.follower
        if follower is not None:
            try:
                return follower.finish()
            except DestChangedError:
                raise  # about DEST, not the archive: a second extraction would only hide it
            except FALLBACK + (DriveStageError,) as exc:
                log.info("%s: extracting the verified archive again (%s)", self.describe, exc)
        # The very file verified (opened again by its name, it read whatever another
        # program had renamed over it in DEST since, and the stamp vouched for that).
        return extract(target, self.dest, progress=self.extract_progress,
                       lock_dir=self.lock_dir, protected=self.protected,
                       free_bytes=lambda p: shutil.disk_usage(p).free - self.reserve,
                       replaceable=replaceable,
                       identity=self.dl.placed if target == self.dl.target else None,
                       turn=self.turn, kept=self.kept, recorded=recorded)

    def close(self) -> None:
        """Stop whatever still runs (after a failure elsewhere)."""
        if self.follower is not None:
            self.follower.abandon()
            self.follower = None
        self.dl.close()


def _directory_start(tail: bytes, size: int) -> Optional[int]:
    """Where to fetch a zip's central directory from before its members, from the file's
    last bytes ``tail`` (:func:`~drivestage.extract.members.zip_directory_start`); None when
    it is not fetched first: no end record, or a directory over
    :data:`~drivestage.extract.members.MAX_ZIP_DIRECTORY`, which the extraction after the
    download refuses (an end record claiming a directory from near byte 0 had the whole
    file fetched by one request, in the thread that waits for it, before the list was
    refused)."""
    start = members.zip_directory_start(tail, size)
    if start is None:
        return None
    cap = members.MAX_ZIP_DIRECTORY
    if members.declared_directory_size(tail, size) > cap or size - len(tail) - start > cap:
        return None
    return start
