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

Drive's daily download cap of an account (about 10 TB a day; rclone's
stop_on_download_limit option) refuses every file with the very answer a file downloaded
too often gets (``downloadQuotaExceeded``, "The download quota for this file has been
exceeded."). So after :data:`CAPPED_AFTER` such refusals in a row, the first one's and those
of files started after it, with no file started after it served, no further file is started:
each would only be refused (fidelity41: 500 shards, 500 requests, and a line naming each
of them with the advice to make a copy, which the cap refuses too). The line then says so.
"""
from __future__ import annotations

import logging
import threading
from typing import Collection, Optional

from drivestage.errors import AbusiveFileError, ChecksumMismatchError, DownloadQuotaError, \
    DriveStageError

log = logging.getLogger(__name__)

#: What Drive refuses for one file alone: the others of the folder may still come.
ALONE = (DownloadQuotaError, ChecksumMismatchError)

#: Files refused for their download quota in a row after which the pull takes it for the
#: account's daily download cap and starts no other file: the first, then files started after
#: it (one started before says nothing: with --jobs, three popular files begun at once).
CAPPED_AFTER = 3


class Refusals:
    """The files of one folder pull that failed alone, by index in tree order (``src``:
    each one's name in messages, ``exclude``: the ``--exclude`` that leaves it out), and the
    archives held back after them (``archives``: the indices of the pull's archives)."""

    def __init__(self, names: list[tuple[str, str]], archives: Collection[int],
                 src: str = ""):
        self._names, self._archives = names, frozenset(archives)
        self._src = src
        self._lock = threading.Lock()
        self.failed: dict[int, Exception] = {}
        self.held: set[int] = set()
        self.unstarted: set[int] = set()   # not started: the account's download cap (module)
        self._quota = 0                    # files refused for their download quota
        self._quota_after = 0              # of them, started after the first one's refusal
        self._served_since = False         # a file started after the first of them came
        self._staged = 0                   # files staged (fetched, or there already)

    def add(self, index: int, exc: Exception, ticket: int = 0) -> None:
        """File ``index`` failed alone with ``exc`` (``ticket``: what :meth:`ticket` said as
        it started)."""
        with self._lock:
            self.failed[index] = exc
            if isinstance(exc, DownloadQuotaError) and not isinstance(exc, AbusiveFileError):
                self._quota += 1
                if ticket > 0:
                    self._quota_after += 1

    def ticket(self) -> int:
        """Taken as a file starts: the download-quota refusals so far (for :meth:`served`)."""
        with self._lock:
            return self._quota

    def served(self, ticket: int, downloaded: bool) -> None:
        """The file that took ``ticket`` was staged; ``downloaded``: Drive served it bytes,
        so it still serves this account."""
        with self._lock:
            self._staged += 1
            if ticket > 0 and downloaded:
                self._served_since = True

    def capped(self, index: int) -> bool:
        """Whether Drive looks to refuse this account every file (the module): then file
        ``index`` is not started (counted in :attr:`unstarted`)."""
        with self._lock:
            if not self._capped():
                return False
            self.unstarted.add(index)
            return True

    def _capped(self) -> bool:
        return self._quota_after >= CAPPED_AFTER - 1 and not self._served_since

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
        if self.unstarted or self._capped():
            return self._capped_error(failed)
        first_exc = self.failed[failed[0]]
        kind = type(first_exc) if isinstance(first_exc, DriveStageError) else DriveStageError
        if len(failed) == 1:
            return kind(f"{first_exc} Or pull the rest of the folder without it: --exclude "
                        f"{self._names[failed[0]][1]}")
        said = "; ".join(str(self.failed[i]) for i in failed)
        excludes = " ".join(f"--exclude {self._names[i][1]}" for i in failed)
        return kind(f"{len(failed)} files were not fetched, the rest were: {said}. Or pull "
                    f"the rest of the folder without them: {excludes}")

    def _capped_error(self, failed: list[int]) -> DriveStageError:
        """One line for a pull the account's daily download cap stopped (the module)."""
        quota = [i for i in failed if isinstance(self.failed[i], DownloadQuotaError)
                 and not isinstance(self.failed[i], AbusiveFileError)]
        missing = sorted(set(failed) | self.unstarted)
        names = ", ".join(self._names[i][0] for i in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        other = len(failed) - len(quota)
        also = f" ({other} of them for another reason: pull again to see it)" if other else ""
        return DownloadQuotaError(
            f"{self._src or 'pull'}: Drive refused {len(quota)} files in a row as downloaded "
            "too often (HTTP 403 downloadQuotaExceeded) and served none since: this account "
            "has most likely reached Drive's daily download cap (about 10 TB per user per day), "
            "which refuses every file with that answer, so no other file was started. "
            f"{self._staged} staged, {len(missing)} not ({names}{more}){also}. Not retried: "
            "the cap lifts within 24 hours; pull again then, and only what is missing comes. "
            "(If only these files are popular ones, pull the rest with --exclude.)")
