"""The refusal of ``--include`` / ``--exclude`` globs that leave no file to pull or push.

A pull of ``drive:VOC_datasets --include '*.zip'`` from a folder holding ``.tar`` files
printed ``0 files (none)`` and exited 0: the user asked for data and did not get it, and a
script went on to train on nothing (ux35). Now it stops before anything is written (no
local folder made, no Drive folder made), in one line that names the globs and a few of
the names the folder does hold, exit 1.
"""
from __future__ import annotations

from typing import Sequence

from drivestage.errors import NothingChosenError
from drivestage.paths import printable
from drivestage.shell_words import shell_word

#: Names of the folder a refusal shows (then "and N more").
SHOWN = 5


def refuse_nothing_chosen(where: str, include: Sequence[str], exclude: Sequence[str],
                          held: Sequence[str], folders: Sequence[str] = (),
                          verb: str = "pull") -> None:
    """Raise :class:`NothingChosenError` for the globs that chose none of ``held`` (what
    ``where`` holds: paths inside it, as the globs are matched to them);
    ``folders``: its folder names, for the hint that ``--include`` takes files only;
    ``verb``: ``pull`` or ``push``."""
    globs = " ".join([f"--include {_quoted(p)}" for p in include] +
                     [f"--exclude {_quoted(p)}" for p in exclude])
    names = sorted(held)
    if names:
        shown = ", ".join(printable(n) for n in names[:SHOWN]) + (f" and {len(names) - SHOWN} more"
                                            if len(names) > SHOWN else "")
        holds = f"it holds {shown}"
    else:
        holds = "it is empty"
    hint = ""
    named = [p for p in include if p.rstrip("/") in folders]
    if named:   # (--include sub: a folder's name; the globs choose files)
        hint = (f"; --include chooses files: {_quoted(named[0].rstrip('/') + '/*')} takes "
                "the files of that folder")
    raise NothingChosenError(f"{globs} leave{'s' if len(include) + len(exclude) == 1 else ''} "
                             f"no file of {printable(where)} to {verb} ({holds}){hint}; check "
                             "the globs (case-sensitive, matched to the path inside the "
                             "folder or to the name)")


def _quoted(pattern: str) -> str:
    """``pattern`` as typed in a shell (quoted where it must be), safe to print: one with a
    control character as ``$'…'`` (:func:`drivestage.shell_words.shell_word`; quoted after its
    escape, ``'a\x0ab'`` was another glob when copied: mount52)."""
    return shell_word(pattern)
