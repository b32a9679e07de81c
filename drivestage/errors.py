"""Every error drivestage raises on purpose.

Each class also inherits the closest built-in (``FileNotFoundError``,
``PermissionError``, ``OSError``, ``ValueError``) so callers can catch either.
The CLI turns any :class:`DriveStageError` into one ``Error: ...`` line and
``exit_code``.
"""
from __future__ import annotations

import os


class DriveStageError(Exception):
    """Base class: a failure with a message fit for the user."""

    exit_code = 1
    #: Whether the message is meant to span lines (else a newline in it, say from a Drive
    #: title, is shown escaped like any control character).
    multiline = False


class UsageError(DriveStageError, ValueError):
    """A bad argument or path the user typed (exit code 2)."""

    exit_code = 2


class FolderInTheWayError(UsageError):
    """A file to send where the destination holds a folder of its name: sent beside it, the
    file made a name that every pull refused ("names 2 items"; attackpush45). ``fix``: what
    the sender may do (a push: rename, or ``--delete``; the trainer: rename Drive's folder)."""

    def __init__(self, where: str, what: str,
                 fix: str = "rename one of them, or push with --delete to replace the "
                            "folder") -> None:
        self.where, self.what = where, what   # (a caller's own fix: the trainer's)
        super().__init__(f"{where} exists and is a folder, not a file; {what} cannot be sent "
                         f"there: {fix}")


class NameSharedError(FolderInTheWayError):
    """A folder and a file already share a name the sender would write: the folder made on
    Drive after the last listing of the send that put the file there (Drive has no "make it
    unless the name is taken"; pushlefts48). Nothing of the name is sent again."""

    def __init__(self, folder: str, name: str, what: str, fix: str) -> None:
        self.folder, self.name, self.what = folder, name, what   # (a caller's own fix: trainer)
        self.where = f"{folder}/{name}"
        UsageError.__init__(self, f"{folder} holds a folder and a file both named {name} (the "
                                  f"folder made there while the file was sent?): a pull refuses "
                                  f"that name until one of them goes, and {what} is not sent "
                                  f"again; {fix}")


class FolderLeftError(DriveStageError):
    """``push --delete`` sent a file at a folder's name, and the folder, checked again just
    before its removal, was left (something came into it meanwhile): the two share a name
    that every pull refuses until one goes (retain47). Exit 1: the push did not do what it
    said; the next ``push --delete`` removes the folder once nothing writes into it."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where} is a folder --delete left (the lines above say why), and "
                         f"{what} was sent beside it: a pull refuses that name until one of "
                         "them goes; push --delete again once nothing writes into the folder, "
                         "or rename one of them")


class AuthError(DriveStageError, PermissionError):
    """No credentials, or the credentials were refused (401 after a refresh)."""


class NoCredentialsError(AuthError):
    """No credentials anywhere drivestage looks (the message lists the options, a line each)."""

    multiline = True


class NoColabLoginError(AuthError):
    """Inside Colab, but the notebook never logged in (``auth.authenticate_user()``)."""


class TokenRevokedError(AuthError):
    """Google refused the refresh token (``invalid_grant``): revoked, or expired (7 days for
    an OAuth app in Testing mode)."""


class ReauthRequiredError(AuthError):
    """A Workspace session-length policy wants the user to sign in again (``invalid_rapt``)."""


class TokenServerError(AuthError):
    """Google's token server failed (5xx) to refresh credentials that may well be good."""


class ScopeError(AuthError):
    """The token is valid but lacks the Drive scope (403 ``insufficientPermissions``)."""


class ApiDisabledError(AuthError):
    """The credentials' Google Cloud project has not enabled the Drive API (403
    ``accessNotConfigured``)."""


class NotFoundError(DriveStageError, FileNotFoundError):
    """A remote path or id does not exist."""


class LeftAloneError(NotFoundError):
    """An item a deletion was meant for changed on the store since it was listed (renamed,
    moved away, other bytes): not deleted. A :class:`NotFoundError`, so every caller goes on
    as if it were gone (the item the plan meant is not there); those that report deletions
    tell it apart, so as not to say it was deleted."""


class ChangedSinceCheckedError(LeftAloneError):
    """Drive refused a removal (or write) that named the etag its check read (``If-Match``:
    412 conditionNotMet): the item changed between the check and the request (a new
    revision under the same id). Nothing was done; the caller keeps it, as an item changed
    since its listing."""


class StaysElsewhereError(LeftAloneError):
    """An item a removal was meant for is also in another folder (a second parent Drive kept
    from before 2020), and neither a deletion (which takes it from every folder) nor taking
    it out of that one folder only (Drive refused) was done: it stays, in all of them."""


class KeptMovedError(LeftAloneError):
    """An item the plan keeps (the newest checkpoint, what keep_last counts) was deleted,
    trashed, renamed, moved or given other bytes since the listing the plan was made from:
    the plan no longer holds, and none of its deletions is made (each is left alone)."""


class MovedAwayError(DriveStageError):
    """A file a push was about to update in place sits in other folders (``parents``: their
    ids) than the one it was listed in: the push decides whether the DEST path still leads
    there (a dedupe's move) or the user moved it away (:mod:`drivestage.push_job`)."""

    def __init__(self, where: str, parents: list[str]):
        super().__init__(f"{where} was moved into another folder (parents "
                         f"{', '.join(parents)}) on Drive since it was listed")
        self.parents = parents


class TrashedAwayError(DriveStageError):
    """A file a push updated in place was trashed on its own meanwhile: Drive took the
    update into the trash (``explicitlyTrashed`` in its answer); the push sends it anew."""


class TrashedError(NotFoundError):
    """The item is in Drive's trash: restorable there for 30 days (a 404 is not)."""


class ArrivedInTrashError(TrashedError):
    """An upload completed, and Drive's answer says the file is in the trash: the folder it
    went into is (Drive takes files into a trashed folder without an error). A push sends
    nothing more into it (:class:`drivestage.push_watch.Halt`). ``where``: the file."""

    where: str = ""


class DanglingShortcutError(NotFoundError):
    """A Drive shortcut whose target is gone or no longer shared with the user."""


class ShortcutCycleError(DriveStageError, ValueError):
    """Folder shortcuts that lead back into a folder they sit in."""


class DuplicateNameError(DriveStageError, ValueError):
    """Several Drive items share one name in one folder."""

    def __init__(self, message: str, ids: list[str] | None = None):
        super().__init__(message)
        self.ids = list(ids or [])


class DedupeConflictError(DriveStageError):
    """``dedupe`` left items in a newer same-named folder: the oldest holds other bytes of
    their names."""


class PermissionDeniedError(DriveStageError, PermissionError):
    """Drive refused access (403 insufficientFilePermissions and friends)."""


class WebPageRefusalError(PermissionDeniedError):
    """A 401/403/407 that came as a web page, not as Drive's JSON answer: a network filter's
    or a captive portal's. No role or sharing setting is missing, so nothing is tried as if
    Drive had refused (a permanent delete is not retried as a trash)."""


class DownloadRestrictedError(PermissionDeniedError):
    """The file's owner turned downloading off for viewers and commenters
    (``copyRequiresWriterPermission``; 403 ``cannotDownloadFile``): this account sees the
    file but may not read its bytes. ``answer``: Drive's refusal of the bytes, when it came
    at download time (``HTTP 403 cannotDownloadFile: ...``)."""

    def __init__(self, message: str, *, answer: str | None = None):
        super().__init__(message)
        self.answer = answer


class QuotaExceededError(DriveStageError, OSError):
    """The Drive storage quota cannot hold what we were asked to write. ``head``, when set,
    is the message without the remedy that names the CLI's flags (``--keep-last``): a caller
    whose user sets retention otherwise (the trainer's ``drive.keep_last``) words its own."""

    def __init__(self, message: str, *, needed: int | None = None, free: int | None = None,
                 trash: int | None = None, head: str | None = None):
        super().__init__(message)
        self.needed, self.free, self.trash = needed, free, trash
        self.head = head


class BudgetError(QuotaExceededError):
    """A retention budget (``max_bytes``) cannot hold what the rest of the policy keeps
    (``head``, then ``; remedy``)."""

    def __init__(self, head: str, remedy: str, *, needed: int | None = None,
                 free: int | None = None, floor: int | None = None):
        super().__init__(f"{head}; {remedy}", needed=needed, free=free, head=head)
        #: The smallest budget that holds what no budget deletes (a remedy names it).
        self.floor = floor


class ServiceAccountStorageError(QuotaExceededError):
    """A service account tried to write into a My Drive (it has no storage)."""


class DailyUploadCapError(DriveStageError, OSError):
    """Drive's ~750 GB/day upload cap was reached."""


class DailyLimitError(DriveStageError, OSError):
    """The Cloud project behind the credentials used up its Drive API requests for the day
    (403 ``dailyLimitExceeded``)."""


class ItemLimitError(DriveStageError, OSError):
    """A Drive folder (``numChildrenInNonRootLimitExceeded``) or a shared drive
    (``teamDriveFileLimitExceeded``) holds as many items as Drive allows, folders would nest
    deeper than it allows (``teamDriveHierarchyTooDeep``, ``myDriveHierarchyDepthLimitExceeded``),
    or the account created as many items as it allows (``activeItemCreationLimitExceeded``)."""


class ItemCreationLimitError(ItemLimitError):
    """The account has created as many items as Drive allows, wherever they are
    (``activeItemCreationLimitExceeded``): no upload of the account can succeed."""


class DownloadQuotaError(DriveStageError, OSError):
    """Drive refuses to serve the file (``downloadQuotaExceeded``: too many downloads)."""


class AbusiveFileError(DownloadQuotaError):
    """Drive flagged the file as malware or spam (``cannotDownloadAbusiveFile``)."""


class RemoteError(DriveStageError, OSError):
    """Drive kept failing after every retry, or answered something unexpected."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status, self.reason = status, reason


class PreconditionFailedError(RemoteError):
    """Drive refused a write that named the etag its caller read (``If-Match``: 412
    conditionNotMet): the item changed since that read, and nothing was written. Not a
    :class:`NotFoundError`: the item is there, changed; the caller reads it again and
    decides (the trainer's lease: :mod:`trainer.lease_cas`)."""


class SharingLimitError(RemoteError):
    """This account reached Drive's limit on sharing (403 ``sharingRateLimitExceeded``): every
    upload is refused alike until it lifts."""


class PropertyLimitError(RemoteError):
    """Drive refused a custom property for one of its limits (403), not for access: no sharing
    setting lifts it (it said "permission denied... check the sharing settings")."""


class PropertyCountLimitError(PropertyLimitError):
    """The item holds as many custom properties as Drive allows (403
    ``propertyCountLimitExceeded``: 30 public ones, 30 private ones per app, 100 in all)."""


class PropertyLengthLimitError(PropertyLimitError):
    """A custom property's key and value together are over Drive's 124 bytes of UTF-8 (403
    ``propertyLengthLimitExceeded``)."""


class BlockedByGoogleError(RemoteError):
    """Google's front end answered with its own "Sorry..." page: it took this network's
    requests for automated queries. Every request from here meets it for a while (hours), so
    a push starts no other upload."""


class RetriesExhaustedError(RemoteError):
    """A request kept getting answers worth retrying (429, 5xx, a dropped connection) through
    every retry: Drive is not taking requests now, so a push starts no further upload."""


class FolderGoneError(RemoteError):
    """A folder a push sent files into went to the trash (or away) while the push ran: what
    it sent there went with it. ``stop``: what the user should stop before pushing again
    (what trashes it, what deletes it: only a trashed folder's files are in the trash)."""

    def __init__(self, message: str, *, stop: str = "what trashes it (a dedupe running?)"):
        super().__init__(message)
        self.stop = stop


class MovedApartError(FolderGoneError):
    """A checkpoint a push replaced and the sidecar that vouches for it are no longer in one
    folder (a dedupe moved one of them while the push ran): its old copy stays."""

    def __init__(self, message: str):
        super().__init__(message, stop="what moves them (a dedupe running?)")


class RemoteChangedError(RemoteError):
    """The file changed on Drive while it downloaded (a new version of another size, or of
    the same size: its checksum changed): what arrived mixes two versions and is deleted.
    Running again fetches the new version; a caller that chose the file for its old bytes
    (a checkpoint its sidecar vouches for) lists again instead."""


class MalformedAnswerError(RemoteError):
    """The server answered, but not with what Drive sends (a field missing or of the wrong
    type)."""


class WrongItemError(MalformedAnswerError):
    """The server answered for another item than the one asked about (files.get of another
    id, a listing holding another folder's items, an upload completed as another file):
    acting on it would change files the user never named (:mod:`drivestage.drive.provenance`)."""


class ForeignSessionError(MalformedAnswerError):
    """The server answered an upload session's address on another server (origin), as the
    new session's or as where it moved: the file's bytes and the credentials would go there,
    so nothing is sent there."""


class ChecksumMismatchError(DriveStageError, OSError):
    """Bytes on disk do not match Drive's md5Checksum or size."""

    def __init__(self, message: str, *, expected: str | None = None, got: str | None = None):
        super().__init__(message)
        self.expected, self.got = expected, got


class UnsafeArchiveError(DriveStageError, ValueError):
    """An archive member would land outside the destination (zip-slip and friends)."""


class ArchiveError(DriveStageError, OSError):
    """An archive is truncated, corrupt or of an unknown format."""


class HeldBackError(ArchiveError):
    """An archive of a folder pull not extracted: one before it in the pull's order failed
    (:mod:`drivestage.stage_failed`; its download stays, verified and stamped)."""


class NotAnArchiveError(ArchiveError):
    """``--extract`` of a file that is neither zip nor tar: ``src`` as given, downloaded
    (verified) to ``target``. A caller that extracts without an ``--extract`` option (the
    trainer's ``data.drive_zip``) words its own advice from them."""

    def __init__(self, src: str, target: str) -> None:
        super().__init__(f"--extract: {src} is not a zip or tar archive (downloaded to "
                         f"{target}); pull it without --extract")
        self.src, self.target = src, target


class DestChangedError(ArchiveError):
    """DEST kept changing while an extraction merged into it (another program writing
    there); said as it is, never retried behind the user's back."""


class UserFilesError(DestChangedError):
    """Members of an archive would replace what DEST holds at their paths that no
    extraction put there (no stamp records it: the user's own files) and that holds other
    bytes: nothing was extracted (``--force`` replaces them). Said as it is, never retried.
    ``first``: the first such path (relative to ``dest``), ``count``: how many; ``advice``
    (what to do) in place of ``pull --force``'s, ``key``: the setting that pulled it (the
    trainer's ``data.drive_zip``), said first; ``partly``: the archive's other members were
    extracted (a folder pull's archive that left the files to one pulled after it, which
    does not have them: :func:`drivestage.stamps.left_over`)."""

    def __init__(self, archive: str, dest: str, first: str, count: int,
                 advice: str | None = None, key: str = "", partly: bool = False):
        self.archive, self.dest, self.first, self.count = archive, dest, first, count
        self.partly = partly
        super().__init__((f"{key}: " if key else "") + self.line(advice))

    def line(self, advice: str | None = None) -> str:
        """The message, with ``advice`` (what to do) in place of ``pull --force``'s."""
        one = self.count == 1
        them = "it" if one else "them"
        advice = advice or f"move {them} away, or pull with --force to replace {them}"
        where = os.path.join(self.dest, *self.first.split("/"))
        what = (f"1 file in {self.dest} that is not from an extraction and holds other "
                f"bytes: {where}" if one else
                f"{self.count} files in {self.dest} that are not from an extraction and "
                f"hold other bytes, the first {where}")
        done = "its other members were" if self.partly else "nothing of it was"
        return (f"{os.path.basename(self.archive)} would replace {what}; {done} extracted: "
                f"{advice}")


class DiskSpaceError(DriveStageError, OSError):
    """Not enough free local disk space for a download or an extraction."""

    def __init__(self, message: str, *, needed: int | None = None, free: int | None = None):
        super().__init__(message)
        self.needed, self.free = needed, free


class PolicyError(DriveStageError, ValueError):
    """A retention policy that cannot work (validated when it is built)."""

    exit_code = 2


class MirrorError(DriveStageError):
    """A background mirror failed; raised to the caller on ``flush()``."""


class OtherRunError(DriveStageError):
    """A push left checkpoints of another training run on the store (same names) instead of
    replacing them; everything else was pushed (``--force`` replaces them)."""


class RunHeldError(DriveStageError):
    """A folder a command would change is held by a live training run (its lease claim,
    :mod:`drivestage.run_claims`): ``drivestage dedupe`` refuses it."""


class GuardUnsureError(DriveStageError):
    """A push's guard cannot tell whether the caller may still write there (a trainer whose
    run's lease is not taken yet, Drive silent when it tried): a new file that replaces
    nothing may go; a removal or an update in place may not, and the push stops there with
    this error (:mod:`drivestage.push_fence`)."""


class SourceChangedError(DriveStageError, OSError):
    """A local file kept changing while it was being uploaded."""


class LocalFileError(DriveStageError, OSError):
    """A local file or folder cannot be written or read (permissions, a folder in the way)."""


class BecameOtherError(LocalFileError):
    """A file a push found became something else before it was sent (a link, a FIFO, a
    folder; a folder on its way, a link): never read through what it became (attackpush45,
    attack46). ``was``: what it was as the push began."""

    def __init__(self, path: str, what: str, was: str = "a file"):
        super().__init__(f"{path} became {what} while the push ran ({was} when it began); "
                         f"not sent again: push again once it is {was}")
        self.path, self.what, self.was = path, what, was


class PartialChangedError(LocalFileError):
    """Another program changed a download's partial file while it downloaded (bytes written
    there are gone: truncated); nothing was staged, the download was deleted."""


class LocksBusyError(DriveStageError):
    """Other pushes kept taking a folder a push reaches through a shortcut, each time it
    started again (:func:`drivestage.locks.locked`)."""


class NothingChosenError(DriveStageError):
    """``--include`` / ``--exclude`` leave no file of the folder to pull or push: the user
    asked for data that would not come (nothing was written)."""


class DeletionRefusedError(DriveStageError):
    """``push --delete`` would remove far more than SRC holds; nothing was deleted."""

    def __init__(self, message: str, *, count: int | None = None):
        super().__init__(message)
        self.count = count


def debug_on(variable: str) -> bool:
    """Whether ``$variable`` (``DRIVESTAGE_DEBUG``, ``TRAINER_DEBUG``) asks for tracebacks:
    set and not ``0``/``false``/``no``/``off`` (``=0`` used to turn them on too)."""
    return os.environ.get(variable, "").strip().lower() not in ("", "0", "false", "no", "off")
