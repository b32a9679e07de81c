"""Where a ``drive:`` path starts: My Drive, a shared drive found by name, or "Shared with
me"; :func:`open_drive` turns a parsed path into a store rooted there and the path inside it.
"""
from __future__ import annotations

from typing import Any, Optional

from drivestage.drive import answers, auth, connections, paging, proxies, retry
from drivestage.drive.resources import read_only_message
from drivestage.drive.store import DriveStore
from drivestage.drive.store_folders import SHARED_WITH_ME
from drivestage.drive.transport import Transport
from drivestage.errors import DuplicateNameError, MalformedAnswerError, NotFoundError
from drivestage.paths import DrivePath, StorePath


def connect(api_root: Optional[str] = None, credentials: Optional[str] = None,
            token: Optional[str] = None, *, timeout: Optional[float] = None,
            acknowledge_abuse: bool = False) -> "DriveStore":
    """A :class:`DriveStore` on My Drive of the account found by :mod:`drivestage.drive.auth`.

    ``api_root`` defaults to ``$DRIVESTAGE_API_ROOT``; with it, the token defaults to
    ``$DRIVESTAGE_TOKEN``. ``timeout`` (seconds without a byte) defaults to
    ``$DRIVESTAGE_HTTP_TIMEOUT`` or 120. ``acknowledge_abuse`` downloads files Drive flagged as
    malware or spam (Drive honours it for their owner or a shared drive's Manager). No network
    is used until the first call (except inside Colab, where the notebook's login is checked).
    """
    root = connections.api_root(api_root)
    if timeout is None:
        timeout = connections.http_timeout()
    # (refused now, as the HTTP timeout: read by the first listing only, a bad value let a
    # trainer's sync train a whole run, its mirror failing every period: attackb50)
    paging.listing_timeout()
    paging.walk_timeout()   # (and a walk's bounds, read at its pages the same way: walk52b)
    paging.walk_pages()
    # (so too the retries' settings, read by each request's retry loop: a typo in
    # DRIVESTAGE_RETRY_BASE let a trainer train its whole run, every mirror push failing on
    # it, nothing on Drive: attack51)
    retry.Policy.from_env()
    # (and the proxy the environment names for Drive's scheme, read at each connection: an
    # https_proxy with a port that is no number, the same whole run: attack51)
    proxies.from_environment("http" if root and root.startswith("http:") else "https")
    creds = auth.load_credentials(credentials=credentials, token=token, api_root=root)
    gauth, drive = auth.pydrive_session(creds, root, timeout)
    transport = Transport(gauth, timeout=timeout, acknowledge_abuse=acknowledge_abuse)
    return DriveStore(transport, drive, api_root=root)


def find_shared_drive(store: DriveStore, name: str) -> str:
    """The id of the shared drive called exactly ``name``."""
    return str(_shared_drive(store, name)["id"])


def _shared_drive(store: DriveStore, name: str) -> dict[str, Any]:
    """The Drive resource of the shared drive called exactly ``name`` (an ``id`` checked)."""
    items: list[dict[str, Any]] = []

    restarts = [0]
    clock = paging.Clock("the shared drives")

    def fetch() -> None:
        items.clear()
        token = None
        seen: set[str] = set()
        for pages in range(paging.MAX_PAGES):
            kwargs: dict[str, Any] = {"maxResults": 100}
            if token:
                kwargs["pageToken"] = token
            try:
                page = store.service.drives().list(**kwargs).execute(
                    http=store.transport.http())
            except Exception as exc:
                # A page token Drive rejects (400) is discarded and the listing starts over
                # from its first page, as the drives.list reference says (paging.all_pages).
                failure = answers.failure_of(exc)
                if not (token and failure is not None and failure.status == 400
                        and restarts[0] < paging.MAX_RESTARTS):
                    raise
                restarts[0] += 1
                items.clear()
                token, seen = None, set()
                continue
            items.extend(page.get("items") or [])
            token = page.get("nextPageToken")
            if not token:
                return
            paging.check_token(token, seen, "the shared drives")
            clock.check(pages + 1)
        raise paging.too_many("the shared drives")

    store.call(f"list shared drives (looking for {name!r})", fetch)
    found = [d for d in items if isinstance(d, dict) and d.get("name") == name]
    if not found:
        names = ", ".join(sorted(repr(d.get("name")) for d in items
                                 if isinstance(d, dict))) or "none"
        raise NotFoundError(f"no shared drive named {name!r} (this account sees: "
                            f"{names}; names are case-sensitive)")
    if len(found) > 1:
        ids = [str(d.get("id")) for d in found]
        raise DuplicateNameError(f"{len(ids)} shared drives are named {name!r} (ids "
                                 f"{', '.join(ids)}); use drive:id:<ID>/path instead",
                                 ids=ids)
    if not isinstance(found[0].get("id"), str):
        raise MalformedAnswerError(f"list shared drives: the server answered a drive "
                                   f"without an id for {name!r}")
    return found[0]


def in_shared_drive(store: DriveStore, name: str) -> DriveStore:
    """A store on ``store``'s connection, rooted at the shared drive ``name``."""
    found = _shared_drive(store, name)
    drive_id = str(found["id"])
    # A reader's or commenter's shared drive: its root is written into by nobody's push. Known
    # from the listing that found it (no request more); none of the drive's folders says so.
    caps = found.get("capabilities")
    read_only = read_only_message(f"drive:shared/{name}") if isinstance(caps, dict) and \
        caps.get("canAddChildren") is False else None
    return DriveStore(store.transport, store.drive, api_root=store.api_root, root_id=drive_id,
                      drive_id=drive_id, label=f"drive:shared/{name}/", root_read_only=read_only)


def shared_with_me(store: DriveStore) -> DriveStore:
    """A store on ``store``'s connection whose root lists what was shared with the user
    ("Shared with me": not added to My Drive, reachable by name)."""
    return DriveStore(store.transport, store.drive, api_root=store.api_root,
                      root_id=SHARED_WITH_ME, label="drive:shared-with-me/")


def open_drive(path: DrivePath, *, api_root: Optional[str] = None,
               credentials: Optional[str] = None, token: Optional[str] = None,
               acknowledge_abuse: bool = False) -> tuple[DriveStore, StorePath]:
    """A parsed ``drive:`` path -> (store rooted where it starts, the path inside it)."""
    store = connect(api_root=api_root, credentials=credentials, token=token,
                    acknowledge_abuse=acknowledge_abuse)
    if path.anchor == "shared":
        assert path.shared_drive is not None
        store = in_shared_drive(store, path.shared_drive)
    elif path.anchor == "shared-with-me":
        store = shared_with_me(store)
    return store, path.store_path
