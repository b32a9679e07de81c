"""Words a line suggests the user paste into a shell (bash, zsh), each read back as the very
name it stands for: a path (:func:`shell_word`) and the ``--exclude`` glob that leaves one out
(:func:`exclude_pattern`, :func:`exclude_deep`). A name with a control character or bytes not
UTF-8 is written ``$'…'`` (mount51b, mount52).
"""
from __future__ import annotations

import glob
import os
import shlex
from typing import Optional

from drivestage.paths import printable

__all__ = ["exclude_deep", "exclude_pattern", "shell_word"]


def exclude_pattern(rel: str) -> str:
    """The ``--exclude`` glob that leaves out ``rel`` (``a/b/c.txt``), to paste into a shell:
    glob characters escaped (``[[]``), in single quotes as a POSIX shell reads them back (a
    quote inside too); with a control or a byte not UTF-8, :func:`shell_word`'s ``$'…'`` (a
    ``?`` for it left out others too: mount52); ``?`` for a lone surrogate (no bytes give it)."""
    pattern = glob.escape(rel)
    word = _dollar_word(pattern) if printable(pattern) != pattern else None
    if word is not None:
        return word
    pattern = "".join(c if printable(c) == c else "?" for c in pattern)
    return "'" + pattern.replace("'", "'\"'\"'") + "'"


def exclude_deep(rel: str) -> str:
    """:func:`exclude_pattern` of ``rel``, short where ``rel`` is long (a path near the
    kernel's limit, whose glob would be as long): its first folder, ``*``, its name
    (``'a/*/c.txt'``)."""
    top, _, leaf = rel.rpartition("/")
    if len(rel) > 200 and top:
        first, last = exclude_pattern(top.split("/", 1)[0]), exclude_pattern(leaf)
        if first[0] == last[0] == "'":
            return first[:-1] + "/*/" + last[1:]
        return first + "'/*/'" + last   # (a ``$'…'`` word: the shell joins the three)
    return exclude_pattern(rel)


def shell_word(text: str) -> str:
    """``text`` (a path a suggested command names) as one word that bash or zsh reads back
    as ``text``, safe to print: ``shlex.quote`` where it is :func:`printable`; else ``$'…'``
    with each character printable would escape written as the bytes the system names it by
    (``$'a\\x0ab'``). Quoted after printable, a newline was ``'a\\x0ab'``: a command copied
    from the line named another path (mount51b). A name no byte string gives (half a
    surrogate pair) as printable has it."""
    if printable(text) == text:
        return shlex.quote(text)
    word = _dollar_word(text)
    return word if word is not None else shlex.quote(printable(text))


def _dollar_word(text: str) -> Optional[str]:
    """``text`` as ``$'…'`` (:func:`shell_word`), None where a character of it is no byte
    string's (half a surrogate pair)."""
    out = []
    for ch in text:
        if ch in "\\'":
            out.append("\\" + ch)
        elif printable(ch) != ch:
            try:
                out.append("".join(f"\\x{b:02x}" for b in os.fsencode(ch)))
            except UnicodeError:
                return None
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"
