"""files.list: the ``q`` search over what the caller may see, corpora, ``orderBy`` and
pages. Drive's rules kept here: items reachable only through a link are never found by a
search, only by listing the folder they are in (with its resource key); a folder that needs
a resource key answers 404 to a listing without it; ``sharedWithMe`` finds what was shared
with the user directly, never under ``'root' in parents``.
"""
from __future__ import annotations

from typing import Callable, Optional

from drivestage.emulator import access
from drivestage.emulator.access import Caller
from drivestage.emulator.errors import EmulatorApiError
from drivestage.emulator.faults import Faults
from drivestage.emulator.query import QueryError, compile_query, parent_hint
from drivestage.emulator.store import FOLDER_MIME, EmulatorStore
from drivestage.emulator.wire import b36


def page_bounds(query: dict, default_max: int = 100) -> tuple[int, int]:
    """(offset, maxResults) from ``pageToken`` and ``maxResults``; 400 when malformed."""
    try:
        max_results = int(query.get("maxResults", str(default_max)))
        # A token is the offset in base 36, and after an empty page (Faults.empty_pages) a
        # dot and that page's serial number: a new token for the same place.
        token = query.get("pageToken") or ""
        offset = int(token.partition(".")[0], 36) if token else 0
    except ValueError:
        raise EmulatorApiError(400, "invalid", "Invalid value for maxResults or pageToken.",
                               location="pageToken")
    return offset, min(max(max_results, 1), 1000)


def next_page(out: dict, total: int, offset: int, max_results: int, link: str,
              empty: Optional[int] = None) -> dict:
    """Add ``nextPageToken``/``nextLink`` to a list answer when more items follow (``empty``:
    the serial number of an empty page, whose token goes on from ``offset`` itself)."""
    if empty is not None:
        token = f"{b36(offset)}.{b36(empty)}"
    elif offset + max_results < total:
        token = b36(offset + max_results)
    else:
        return out
    out["nextPageToken"] = token
    out["nextLink"] = f"{link}?pageToken={token}"
    return out


def search(store: EmulatorStore, query: dict, caller: Caller, all_drives: bool,
           faults: Optional[Faults] = None) -> list[tuple[dict, access.Access]]:
    """Every (record, access) the caller's ``files.list`` matches, in ``orderBy`` order; as a
    lagging listing gives it, with ``faults`` (:meth:`Faults.lag_listing`)."""
    try:
        pred = compile_query(query.get("q"), store.resolve)
    except QueryError as exc:
        raise EmulatorApiError(400, "invalid", str(exc), location="q")
    corpora = (query.get("corpora") or "default").lower()
    drive_id = query.get("driveId") or query.get("teamDriveId")
    if (corpora == "drive") != bool(drive_id):
        # Drive's answers, as users of other clients pasted them (docs/emulator.md).
        raise EmulatorApiError(403, "teamDriveIdRequiresTeamDriveCorpora",
                               "The driveId parameter must be specified if and only if corpora "
                               "is set to drive.", location="driveId")
    if (drive_id or corpora in ("drive", "alldrives")) and not all_drives:
        raise EmulatorApiError(403, "invalid", "The includeItemsFromAllDrives parameter must be "
                               "set to true when driveId is specified or corpora contains drive "
                               "or allDrives.", location="includeItemsFromAllDrives")
    if drive_id and drive_id not in store.drives:
        raise EmulatorApiError(404, "notFound", f"Shared drive not found: {drive_id}", location="driveId")
    hint = parent_hint(pred)
    if hint is not None and len(hint) == 1:
        refusal = access.unreachable_parent(store, next(iter(hint)), caller)
        if refusal is not None:
            raise refusal
    found = []
    with store.lock:
        if hint is None:
            candidates = store.all_files()
            parents = {}
        else:
            candidates = {r["id"]: r for p in hint for r in store.children(p)}.values()
            parents = {p: access.resolve(store, store.files[p], caller)
                       for p in map(store.resolve, hint) if p in store.files}

        within = None if hint is None else set(map(store.resolve, hint))

        def admit(r: dict) -> Optional[access.Access]:
            """The caller's access to ``r`` when the query finds it, else None."""
            if within is not None and not within & set(r["parents"]):
                return None
            if drive_id:
                if r.get("driveId") != drive_id:
                    return None
            elif r.get("driveId") is not None and not (all_drives or corpora == "alldrives"):
                return None
            acc = access.resolve(store, r, caller)
            if acc is None and parents:
                acc = access.through_parent(r, caller, parents.get(r["parents"][0]) if r["parents"] else None)
            if acc is None or (hint is None and not access.searchable(acc)):
                return None
            return acc if pred(r) else None

        for r in candidates:
            acc = admit(r)
            if acc is not None:
                found.append((r, acc))
        if faults is not None:
            found = faults.lagged(found, admit)
    key = order_key(query.get("orderBy"))
    found.sort(key=lambda pair: key(pair[0]))
    return found


def order_key(spec: Optional[str]) -> Callable:
    """A sort key for records from an ``orderBy`` value (default: oldest first)."""
    spec = (spec or "").strip()
    if not spec:
        return lambda r: (r["created"], r["id"])
    keys = []
    for part in spec.split(","):
        words = part.split()
        if not words:
            continue
        name, desc = words[0], len(words) > 1 and words[1].lower() == "desc"
        getter = {"title": lambda r: r["title"].casefold(), "modifiedDate": lambda r: r["modified"],
                  "createdDate": lambda r: r["created"],
                  "folder": lambda r: r["mimeType"] != FOLDER_MIME,
                  "quotaBytesUsed": lambda r: r["size"] or 0}.get(name)
        if getter is None:
            raise EmulatorApiError(400, "invalid", f"Invalid orderBy key {name!r}.", location="orderBy")
        keys.append((getter, desc))

    class _Key:
        __slots__ = ("r",)

        def __init__(self, r):
            self.r = r

        def __lt__(self, other):
            for getter, desc in keys:
                a, b = getter(self.r), getter(other.r)
                if a != b:
                    return (a > b) if desc else (a < b)
            return self.r["id"] < other.r["id"]

    return _Key
