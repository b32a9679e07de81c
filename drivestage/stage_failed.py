"""The files of a folder pull that Drive would not serve (:class:`Refusals`): a file flagged
as malware (``cannotDownloadAbusiveFile``), downloaded too often (``downloadQuotaExceeded``),
or whose bytes never matched Drive's md5 after the retries. Drive refuses that file alone,
so the rest of the folder still comes, and the pull fails at its end (exit 1), naming
every such file and the ``--exclude`` that leaves it out (stampcache36: the first one
stopped every file after it in tree order: 500 shards named after one big archive over
its quota stayed unfetched until the quota reset).

Archives merge in the pull's tree order (:mod:`drivestage.stage_order`), the later one
holding a path both have. An archive after a failed one (in that order) is downloaded and
verified, not extracted: merged now, before the failed one, the rerun that fetches that one
merged it after, and a file member of it landing on a folder of the later one was refused
at every rerun. Which paths the failed one holds is not known (its member list comes with
its bytes), so every later archive waits, none is judged disjoint. Its stamp says
"downloaded": the next pull extracts it, in order, without downloading it again.
"""
from __future__ import annotations

import logging
import threading
from typing import Collection, Optional

from drivestage.errors import ChecksumMismatchError, DownloadQuotaError, DriveStageError

log = logging.getLogger(__name__)

#: What Drive refuses for one file alone: the others of the folder may still come.
ALONE = (DownloadQuotaError, ChecksumMismatchError)


class Refusals:
    """The files of one folder pull that failed alone, by index in tree order (``src``:
    each one's name in messages, ``exclude``: the ``--exclude`` that leaves it out), and the
    archives held back after them (``archives``: the indices of the pull's archives)."""

    def __init__(self, names: list[tuple[str, str]], archives: Collection[int]):
        self._names, self._archives = names, frozenset(archives)
        self._lock = threading.Lock()
        self.failed: dict[int, Exception] = {}
        self.held: set[int] = set()

    def add(self, index: int, exc: Exception) -> None:
        """File ``index`` failed alone with ``exc``."""
        with self._lock:
            self.failed[index] = exc

    def holds_back(self, index: int) -> bool:
        """Whether archive ``index`` must not be extracted now: an archive before it in
        tree order failed (see the module)."""
        with self._lock:
            return index in self._archives and \
                any(f < index for f in self.failed if f in self._archives)

    def hold(self, index: int) -> None:
        """Archive ``index`` was downloaded and verified, not extracted."""
        with self._lock:
            self.held.add(index)

    def error(self) -> Optional[DriveStageError]:
        """The pull's error, naming every file that failed (None: none did)."""
        if not self.failed:
            return None
        if self.held:
            first = min(self.failed.keys() & self._archives)
            held = sorted(self.held)
            names = ", ".join(self._names[i][0] for i in held[:3])
            more = f" and {len(held) - 3} more" if len(held) > 3 else ""
            log.warning("%d %s after %s in the pull's order %s downloaded and verified, not "
                        "extracted (archives merge in that order): the next pull extracts "
                        "%s after it, without downloading %s again: %s%s", len(held),
                        "archive" if len(held) == 1 else "archives", self._names[first][0],
                        "was" if len(held) == 1 else "were",
                        "it" if len(held) == 1 else "them", "it" if len(held) == 1 else "them",
                        names, more)
        failed = sorted(self.failed)
        first_exc = self.failed[failed[0]]
        kind = type(first_exc) if isinstance(first_exc, DriveStageError) else DriveStageError
        if len(failed) == 1:
            return kind(f"{first_exc} Or pull the rest of the folder without it: --exclude "
                        f"{self._names[failed[0]][1]}")
        said = "; ".join(str(self.failed[i]) for i in failed)
        excludes = " ".join(f"--exclude {self._names[i][1]}" for i in failed)
        return kind(f"{len(failed)} files were not fetched, the rest were: {said}. Or pull "
                    f"the rest of the folder without them: {excludes}")
