"""Which command the work of this thread belongs to (``push``, ``prune``, ``mirror``), for
the lines that say what stopped: a removal sent whose answer a Ctrl-C cut in ``prune`` was
said "the push stopped" (leftovers40). A context variable: set where the command starts
(:func:`doing`), read where the line is said (:func:`stopping`); a thread started inside
does not inherit it, which is why ``mirror`` sets it in its period's own thread."""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator, Optional

#: None: a push's (``push``, the trainer's, a Mirror's from Python).
_DOING: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("drivestage_doing",
                                                                       default=None)


@contextmanager
def doing(what: str) -> Iterator[None]:
    """The work inside is ``what``'s, in this thread. The outermost one counts (a mirror's
    retention is the mirror's, not a prune's)."""
    token = _DOING.set(_DOING.get() or what)
    try:
        yield
    finally:
        _DOING.reset(token)


def stopping() -> str:
    """The command a stop ends, as a line says it: ``push`` unless :func:`doing` says."""
    return _DOING.get() or "push"
