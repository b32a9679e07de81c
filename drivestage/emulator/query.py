"""The Drive v2 ``q`` search grammar, compiled into a predicate over file records.

Supported: ``and`` / ``or`` / ``not`` / parentheses; ``'<id>' in parents``;
``'me' in owners`` (or an email); ``title`` and ``mimeType`` with ``=``, ``!=``,
``contains``; ``trashed``, ``starred``, ``hidden`` and ``sharedWithMe`` with ``=`` / ``!=``
(``sharedWithMe`` also bare, as v2 wrote it); ``modifiedDate`` and ``createdDate`` with
``= != < <= > >=`` against an RFC 3339 string; ``fullText contains`` (of the title alone).
Like Drive, ``title`` comparisons ignore case, and ``contains`` on a title matches the
starts of its words, not any substring (:func:`_words_match`). Anything else is a
:class:`QueryError` (the server answers 400).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Callable

Predicate = Callable[[dict], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*')
      | (?P<op><=|>=|!=|=|<|>|\(|\))
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<num>-?\d+(?:\.\d+)?)
    )""",
    re.VERBOSE,
)

_TEXT_FIELDS = {"title", "mimetype", "fulltext"}
_BOOL_FIELDS = {"trashed", "starred", "hidden", "sharedwithme"}
_BOOL_KEYS = {"trashed": "trashed", "starred": "starred", "hidden": "hidden",
              "sharedwithme": "shared_role"}   # shared directly with the user
_DATE_FIELDS = {"modifieddate", "createddate"}
_IN_FIELDS = {"parents", "owners"}
USER_EMAIL = "user@example.com"


class QueryError(ValueError):
    """The query does not parse or uses something the emulator does not support."""


def _tokenize(q: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    q = q.rstrip()
    while pos < len(q):
        m = _TOKEN.match(q, pos)
        if not m or m.end() == pos:
            raise QueryError(f"Invalid query: unexpected text at position {pos}: {q[pos:pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        text = m.group(kind)
        if kind == "str":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append((kind, text))
    return tokens


def parse_date(value: str) -> float:
    """RFC 3339 (``2024-01-02T03:04:05.678Z`` or with an offset) to epoch seconds."""
    v = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        dt = datetime.fromisoformat(v)
    except ValueError as exc:
        raise QueryError(f"Invalid date {value!r}: expected RFC 3339") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _hinted(pred: Predicate, parents: set | None) -> Predicate:
    pred.parents_hint = parents
    return pred


def parent_hint(pred: Predicate) -> set | None:
    """Parent ids one of which every match must have (None: no such bound).

    Lets the server look only at the children of those folders instead of
    scanning every file for ``'<id>' in parents and ...`` queries."""
    return getattr(pred, "parents_hint", None)


#: Parentheses and ``not`` nested deeper than this are refused (400): the parser recurses,
#: and a ``q`` of 20,000 ``(`` hit Python's recursion limit, answered 500 backendError, which
#: a client retries as Drive's own failure (attackemu45).
MAX_NESTING = 100


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], resolve_id: Callable[[str], str]):
        self.tokens = tokens
        self.i = 0
        self.resolve_id = resolve_id
        self.depth = 0

    def nest(self) -> None:
        """One level deeper (a ``(`` or a ``not``); 400 past :data:`MAX_NESTING`."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise QueryError(f"Invalid query: nested deeper than {MAX_NESTING} levels")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise QueryError("Invalid query: it ends too early")
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].lower() == word:
            self.i += 1
            return True
        return False

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek() is not None:
            raise QueryError(f"Invalid query: unexpected {self.peek()[1]!r}")
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.keyword("or"):
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        hints = [parent_hint(p) for p in parts]
        union = None if any(h is None for h in hints) else set().union(*hints)
        return _hinted(lambda f: any(p(f) for p in parts), union)

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while self.keyword("and"):
            parts.append(self.not_expr())
        if len(parts) == 1:
            return parts[0]
        hints = [h for h in (parent_hint(p) for p in parts) if h is not None]
        return _hinted(lambda f: all(p(f) for p in parts), min(hints, key=len) if hints else None)

    def not_expr(self) -> Predicate:
        if self.keyword("not"):
            self.nest()
            inner = self.not_expr()
            self.depth -= 1
            return lambda f: not inner(f)
        return self.primary()

    def primary(self) -> Predicate:
        tok = self.take()
        if tok == ("op", "("):
            self.nest()
            inner = self.or_expr()
            if self.take() != ("op", ")"):
                raise QueryError("Invalid query: missing ')'")
            self.depth -= 1
            return inner
        if tok[0] == "str":
            if not self.keyword("in"):
                raise QueryError(f"Invalid query: expected 'in' after {tok[1]!r}")
            field = self.take()
            if field[0] != "word" or field[1].lower() not in _IN_FIELDS:
                raise QueryError(f"Invalid query: unsupported collection {field[1]!r} "
                                 "(only 'parents' and 'owners')")
            if field[1].lower() == "owners":
                owner = None if tok[1].lower() in ("me", USER_EMAIL) else tok[1].lower()
                return lambda f: not f.get("driveId") and (f.get("owner") or None) == owner
            wanted = self.resolve_id(tok[1])
            return _hinted(lambda f: wanted in f.get("parents", ()), {wanted})
        if tok[0] != "word":
            raise QueryError(f"Invalid query: expected a field name, got {tok[1]!r}")
        nxt = self.peek()
        if tok[1].lower() == "sharedwithme" and (nxt is None or nxt == ("op", ")") or (
                nxt[0] == "word" and nxt[1].lower() in ("and", "or"))):
            # Bare, as v2 wrote it; trashed, starred and hidden take = or != only (the v2
            # search-terms reference lists no other use): a bare one is refused below.
            key = _BOOL_KEYS[tok[1].lower()]
            return lambda f: bool(f.get(key))
        return self.comparison(tok[1])

    def comparison(self, field_name: str) -> Predicate:
        field = field_name.lower()
        op_tok = self.take()
        op = op_tok[1].lower()
        if op_tok[0] == "word" and op != "contains":
            raise QueryError(f"Invalid query: unsupported operator {op_tok[1]!r}")
        value_tok = self.take()
        if field in _TEXT_FIELDS:
            if value_tok[0] != "str":
                raise QueryError(f"Invalid query: {field_name} needs a quoted string")
            if field == "fulltext" and op != "contains":
                raise QueryError(f"Invalid query: {field_name} takes only contains")
            return self._text(field, op, value_tok[1])
        if field in _BOOL_FIELDS:
            if value_tok[0] != "word" or value_tok[1].lower() not in ("true", "false") or op not in ("=", "!="):
                raise QueryError(f"Invalid query: {field_name} takes = or != true/false")
            want = value_tok[1].lower() == "true"
            key = _BOOL_KEYS[field]
            if op == "=":
                return lambda f: bool(f.get(key)) == want
            return lambda f: bool(f.get(key)) != want
        if field in _DATE_FIELDS:
            if value_tok[0] != "str":
                raise QueryError(f"Invalid query: {field_name} needs a quoted RFC 3339 date")
            t = parse_date(value_tok[1])
            key = "modified" if field == "modifieddate" else "created"
            cmp = {
                "=": lambda a: abs(a - t) < 0.0005, "!=": lambda a: abs(a - t) >= 0.0005,
                "<": lambda a: a < t, "<=": lambda a: a <= t, ">": lambda a: a > t, ">=": lambda a: a >= t,
            }.get(op)
            if cmp is None:
                raise QueryError(f"Invalid query: {field_name} does not support {op!r}")
            return lambda f: cmp(f.get(key, 0.0))
        raise QueryError(f"Invalid query: unsupported field {field_name!r}")

    @staticmethod
    def _text(field: str, op: str, value: str) -> Predicate:
        key = "mimeType" if field == "mimetype" else "title"
        # Drive matches titles case-insensitively; mime types exactly.
        fold = (lambda s: s.casefold()) if key == "title" else (lambda s: s)
        v = fold(value)
        if op == "=":
            return lambda f: fold(f.get(key, "")) == v
        if op == "!=":
            return lambda f: fold(f.get(key, "")) != v
        if op == "contains" and key == "title":
            return _words_match(value, whole=field == "fulltext")
        if op == "contains":
            return lambda f: v.casefold() in f.get(key, "").casefold()
        raise QueryError(f"Invalid query: {field} does not support {op!r}")


def _tokens(text: str) -> list[str]:
    """``text`` as Drive's search indexes a name: its runs of letters and digits, case folded
    (every other character a space: "Hello_world" is two tokens)."""
    return re.findall(r"[^\W_]+", text.casefold())


def _words_match(value: str, whole: bool) -> Predicate:
    """``title contains value`` as Drive answers it: "The contains operator only performs
    prefix matching for a name term. For example, suppose you have a name of HelloWorld. A
    query of name contains 'Hello' returns a result, but a query of name contains 'World'
    doesn't." (the search-terms reference, as GAM's wiki Users-Drive-Query quotes it), and
    every word of ``value`` must start some token of the name ("There is a match when abc
    and def and ghi all have a prefix/full match of some token in the file name", GAM's
    tests of the live API); a phrase in double quotes, its words one after another.
    ``whole`` (``fullText``): "only performs matching on entire string tokens"; only the
    title is indexed here (no description, no content)."""
    phrase = len(value) >= 2 and value[0] == value[-1] == '"'
    words = _tokens(value)

    def hit(word: str, token: str) -> bool:
        return token == word if whole else token.startswith(word)

    def pred(f: dict) -> bool:
        names = _tokens(f.get("title", ""))
        if phrase:
            n = len(words)
            return any(all(hit(w, t) for w, t in zip(words, names[i:i + n]))
                       for i in range(len(names) - n + 1))
        return all(any(hit(w, t) for t in names) for w in words)

    return pred


def compile_query(q: str | None, resolve_id: Callable[[str], str] = lambda s: s) -> Predicate:
    """Compile a ``q`` string into a predicate over emulator file records.

    ``resolve_id`` maps aliases such as ``root`` to real ids. An empty query
    matches everything. Raises :class:`QueryError` on anything malformed.
    """
    if q is None or not q.strip():
        return lambda f: True
    return _Parser(_tokenize(q), resolve_id).parse()
