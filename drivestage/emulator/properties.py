"""Custom file properties: Drive v2's ``properties[]`` (``{key, value, visibility}``).

What is modelled, from the v2 reference (the Property resource, ``properties.*``) and
Drive's answers as clients report them:

- Set by ``files.insert`` (and an upload's metadata) and by ``files.patch`` /
  ``files.update``: each given property replaces the one of the same key and visibility (a
  PRIVATE one: of the same app), the others stay (merged, not replaced). ``visibility``
  defaults to PRIVATE. A ``value`` of null clears the property (v3 documents this for its
  ``properties`` map; the v2 reference does not say, ``properties.delete`` is v2's way).
- ``properties.list`` / ``get`` / ``insert`` / ``delete`` (``?visibility=``, PRIVATE by
  default; ``insert`` adds the body's property or updates the one of its key and
  visibility). Whether a patch merges (the default here) or replaces the array, the v2
  reference does not say: ``Emulator.patch_replaces_properties`` makes it replace.
- PRIVATE properties belong to the app (the OAuth client) that set them: only that app sees
  or changes them. The emulator's app is a token's (:meth:`Emulator.set_token_app`; every
  token is :data:`DEFAULT_APP` unless told otherwise, and so is the Python API). PUBLIC ones
  any app sees, and any editor may set.
- Limits: 124 bytes of UTF-8 for key + value (403 ``propertyLengthLimitExceeded``, Drive's
  message); 30 PRIVATE properties per app, 30 PUBLIC, 100 in all per file (403
  ``propertyCountLimitExceeded``; the reason is the one Drive gives, the message is ours). A
  refused request changes nothing (a refused insert makes no file).
- ``files.copy`` carries the original's properties to the copy, the request's merged over
  them ("Entries with null values are cleared in update and copy requests", the v3 File).
- ``properties.insert`` / ``delete`` set the file's modifiedDate to now, as a v2 metadata
  write does unless told otherwise; ``Emulator.property_writes_modify = False`` leaves it
  (the reference does not say which Drive does).
- Not modelled: the ``properties has {...}`` term of ``files.list``'s ``q`` is not parsed
  (400, as any unknown term).
"""
from __future__ import annotations

from typing import Any, Optional

from drivestage.emulator.errors import EmulatorApiError

PRIVATE, PUBLIC = "PRIVATE", "PUBLIC"
#: The app every token is, unless :meth:`Emulator.set_token_app` says otherwise.
DEFAULT_APP = "app-default"
MAX_BYTES = 124
MAX_PRIVATE_PER_APP = MAX_PUBLIC = 30
MAX_PER_FILE = 100
LENGTH_MESSAGE = ("Properties and app properties are limited to 124 bytes in UTF-8 encoding, "
                  "counting both the key and the value.")
#: Where a request's metadata says which app sent it (set by the routes, never by a client).
APP_FIELD = "_app"


def stamped(meta: dict, app: str) -> dict:
    """``meta`` as the store takes it: with the sending app beside its properties (any
    ``_app`` a client sent is overwritten)."""
    return dict(meta, **{APP_FIELD: app}) if "properties" in meta else meta


def merged(current: list, given: Any, app: Optional[str]) -> list:
    """The file's properties after a request that gives ``given`` (its ``properties``),
    checked: Drive's refusals raise, and then nothing changes."""
    app = app or DEFAULT_APP
    if given is None:
        return list(current)
    if not isinstance(given, list):
        raise EmulatorApiError(400, "invalid", "Invalid value for: properties", location="properties",
                               location_type="other")
    out = [dict(p) for p in current]
    for p in given:
        key = p.get("key") if isinstance(p, dict) else None
        if not isinstance(key, str) or not key:
            raise EmulatorApiError(400, "required", "Required", location="properties.key",
                                   location_type="other")
        vis = p.get("visibility") or PRIVATE
        if vis not in (PRIVATE, PUBLIC):
            raise EmulatorApiError(400, "invalid", f"Invalid value for: {vis} is not a valid value",
                                   location="properties.visibility", location_type="other")
        owner = app if vis == PRIVATE else None
        out = [q for q in out if not _same(q, key, vis, owner)]
        if p.get("value") is None:
            continue
        value = str(p["value"])
        if len(key.encode("utf-8")) + len(value.encode("utf-8")) > MAX_BYTES:
            raise EmulatorApiError(403, "propertyLengthLimitExceeded", LENGTH_MESSAGE)
        out.append({"key": key, "value": value, "visibility": vis, "app": owner})
    _check_counts(out)
    return out


def replacing(rec: dict, given: list, app: str) -> list:
    """``given`` (a patch's ``properties``) as a request that replaces the array would act:
    every property ``app`` sees and ``given`` does not name is cleared
    (:attr:`Emulator.patch_replaces_properties`)."""
    named = {(p.get("key"), p.get("visibility") or PRIVATE) for p in given if isinstance(p, dict)}
    return [{"key": p["key"], "visibility": p["visibility"], "value": None}
            for p in seen_by(rec, app) if (p["key"], p["visibility"]) not in named] + given


def _same(p: dict, key: str, vis: str, owner: Optional[str]) -> bool:
    return p["key"] == key and p["visibility"] == vis and p.get("app") == owner


def _check_counts(props: list) -> None:
    public = sum(p["visibility"] == PUBLIC for p in props)
    apps: dict[str, int] = {}
    for p in props:
        if p["visibility"] == PRIVATE:
            apps[p["app"]] = apps.get(p["app"], 0) + 1
    if len(props) > MAX_PER_FILE or public > MAX_PUBLIC or \
            any(n > MAX_PRIVATE_PER_APP for n in apps.values()):
        raise EmulatorApiError(403, "propertyCountLimitExceeded",
                               f"A file may have at most {MAX_PRIVATE_PER_APP} private properties "
                               f"per app, {MAX_PUBLIC} public ones and {MAX_PER_FILE} in all.")


def seen_by(rec: dict, app: str) -> list:
    """The properties of ``rec`` that ``app`` may see: the PUBLIC ones and its own PRIVATE."""
    return [p for p in rec.get("properties") or ()
            if p["visibility"] == PUBLIC or p.get("app") == app]


def render(rec: dict, p: dict, base: str) -> dict:
    """One property as the v2 Property resource."""
    fid = rec["id"]
    return {"kind": "drive#property", "etag": f'"{fid}/{p["key"]}/{p["visibility"]}"',
            "selfLink": f"{base}drive/v2/files/{fid}/properties/{p['key']}?visibility="
                        f"{p['visibility']}",
            "key": p["key"], "value": p["value"], "visibility": p["visibility"]}


def without(rec: dict, key: str, visibility: str, app: str) -> list:
    """``rec``'s properties less ``key`` of ``visibility`` as ``app`` sees it; 404 when it
    has none such (Drive's answer to a properties.get or delete of a key it lacks)."""
    owner = app if visibility == PRIVATE else None
    props = list(rec.get("properties") or ())
    kept = [p for p in props if not _same(p, key, visibility, owner)]
    if len(kept) == len(props):
        raise not_found(key, visibility)
    return kept


def not_found(key: str, visibility: str) -> EmulatorApiError:
    return EmulatorApiError(404, "notFound",
                            f"Property not found: key = {key} and visibility = {visibility}")


def visibility_of(query: dict) -> str:
    """A ``properties.*`` request's ``visibility`` (PRIVATE by default)."""
    vis = query.get("visibility") or PRIVATE
    if vis not in (PRIVATE, PUBLIC):
        raise EmulatorApiError(400, "invalid", "Invalid Value", location="visibility",
                               location_type="parameter")
    return vis
