"""Partial responses: a request's ``fields`` selection parsed, checked against the v2
discovery document's resource schemas (as Drive refuses a name the resource lacks), and
applied to the resource answered."""
from __future__ import annotations

import json
import re
from typing import Any, Optional

from drivestage.emulator.errors import EmulatorApiError


def parse_fields(spec: str) -> dict:
    """Parse a partial-response ``fields`` string (``items(id,title),nextPageToken``)."""
    tokens = re.findall(r"[^,()/\s]+|[,()/]", spec)
    pos = 0

    def item() -> dict:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos] in ",()/":
            raise EmulatorApiError(400, "invalidParameter", f"Invalid field selection {spec}",
                                   location="fields")
        name = tokens[pos]
        pos += 1
        if pos < len(tokens) and tokens[pos] == "/":
            pos += 1
            return {name: item()}
        if pos < len(tokens) and tokens[pos] == "(":
            pos += 1
            sub = group()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise EmulatorApiError(400, "invalidParameter", f"Invalid field selection {spec}",
                                       location="fields")
            pos += 1
            return {name: sub}
        return {name: None}

    def group() -> dict:
        nonlocal pos
        out: dict = {}
        while True:
            for k, v in item().items():
                out[k] = v if k not in out or out[k] is None or v is None else {**out[k], **v}
            if pos < len(tokens) and tokens[pos] == ",":
                pos += 1
                continue
            return out

    tree = group()
    if pos != len(tokens):
        raise EmulatorApiError(400, "invalidParameter", f"Invalid field selection {spec}", location="fields")
    return tree


def check_fields(tree: dict, kind: Any) -> None:
    """Refuse a ``fields`` selection (parsed: :func:`parse_fields`) naming a field the resource of ``kind`` (``drive#file``,
    ``drive#fileList``...) does not have, as Drive does (400 ``invalidParameter`` "Invalid
    field selection <name>"): a client asking for a v3 name (``name``, ``size``,
    ``downloadRestrictions``) fails on Drive, and an emulator that answered ``{}`` hid it.
    The names are the v2 discovery document's; without it (or for a kind it lacks)
    nothing is checked."""
    schemas = _schemas()
    schema = schemas.get("kinds", {}).get(kind) if isinstance(kind, str) else None
    if schema is not None:
        _check_tree(tree, schema, schemas["all"])


def _check_tree(tree: dict, schema: dict, every: dict) -> None:
    for name, sub in tree.items():
        if name == "*" or "additionalProperties" in schema:
            continue
        prop = (schema.get("properties") or {}).get(name)
        if prop is None:
            raise EmulatorApiError(400, "invalidParameter",
                                   f"Invalid field selection {name}", location="fields")
        if sub:
            prop = prop.get("items", prop) if prop.get("type") == "array" else prop
            target = every.get(prop["$ref"], {}) if "$ref" in prop else prop
            _check_tree(sub, target, every)


_SCHEMAS: dict = {}


def _schemas() -> dict:
    """``{"all": name -> schema, "kinds": kind -> schema}`` of the Drive v2 discovery
    document googleapiclient ships (read once)."""
    if not _SCHEMAS:
        try:
            from googleapiclient.discovery_cache import get_static_doc

            every = json.loads(get_static_doc("drive", "v2") or "{}").get("schemas", {})
        except (ImportError, ValueError):   # no document: nothing is checked
            every = {}
        kinds = {s["properties"]["kind"].get("default"): s for s in every.values()
                 if "kind" in (s.get("properties") or {})}
        _SCHEMAS.update(all=every, kinds=kinds)
    return _SCHEMAS


def apply_fields(obj: Any, tree: Optional[dict]) -> Any:
    """Keep only the selected fields of a resource (lists are filtered item by item)."""
    if tree is None or "*" in tree:
        return obj
    if isinstance(obj, list):
        return [apply_fields(o, tree) for o in obj]
    if not isinstance(obj, dict):
        return obj
    return {k: apply_fields(obj[k], sub) for k, sub in tree.items() if k in obj}
