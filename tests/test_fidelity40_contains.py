"""``title contains`` matches the starts of a name's words, not any substring. Drive's
search-terms reference (developers.google.com/workspace/drive/api/guides/ref-search-terms,
quoted in GAM's wiki page Users-Drive-Query, and the v2 page's footnote 1 on ``title``'s
``contains``): "The contains operator only performs prefix matching for a name term. For
example, suppose you have a name of HelloWorld. A query of name contains 'Hello' returns a
result, but a query of name contains 'World' doesn't." and, of ``fullText``: "The contains
operator only performs matching on entire string tokens". GAM's tests of the live API: "All
non-alphanumeric characters in the file name are replaced by a space, and a list of text
tokens is produced. All matches are case-insensitive." and "There is a match when abc and
def and ghi all have a prefix/full match of some token in the file name." The emulator
matched any substring: a client that found its files by a name's middle worked here only.
"""
from __future__ import annotations

import pytest

from drivestage.emulator.query import QueryError, compile_query
from tests._drive_clients import drive_service

NAMES = ["HelloWorld", "Hello_world.txt", "epoch_001.pt", "my checkpoint best.pt", "Bestiary"]


def _found(q: str) -> list[str]:
    pred = compile_query(q)
    return [n for n in NAMES if pred({"title": n, "parents": [], "mimeType": "x"})]


@pytest.mark.parametrize("q, names", [
    ("title contains 'Hello'", ["HelloWorld", "Hello_world.txt"]),
    ("title contains 'World'", ["Hello_world.txt"]),          # HelloWorld is one token
    ("title contains 'orld'", []),                             # a substring is no match
    ("title contains 'EPOCH'", ["epoch_001.pt"]),               # case ignored
    ("title contains '001'", ["epoch_001.pt"]),                 # '_' splits words
    ("title contains 'best check'", ["my checkpoint best.pt"]),  # every word, any order
    ("title contains 'best'", ["my checkpoint best.pt", "Bestiary"]),
    ("title contains '\"my check\"'", ["my checkpoint best.pt"]),  # a phrase, in order
    ("title contains '\"check my\"'", []),
    ("fullText contains 'best'", ["my checkpoint best.pt"]),   # whole tokens only
    ("fullText contains 'HelloWorld'", ["HelloWorld"]),
])
def test_title_contains_matches_the_starts_of_words(q, names):
    assert _found(q) == names


def test_full_text_takes_contains_only():
    with pytest.raises(QueryError):
        compile_query("fullText = 'x'")


def test_over_http(emulator):
    for name in ("HelloWorld", "Hello_world.txt"):
        emulator.add_file(f"F/{name}", b"x")
    service = drive_service(emulator.url)

    def titles(q: str) -> list[str]:
        return sorted(it["title"] for it in service.files().list(q=q).execute()["items"])

    assert titles("title contains 'hello'") == ["HelloWorld", "Hello_world.txt"]
    assert titles("title contains 'World'") == ["Hello_world.txt"]
