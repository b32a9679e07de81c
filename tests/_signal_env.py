"""The autouse fixtures that test modules starting ``drivestage`` commands share (the signal
tests' above all): imported into a module, ``from _signal_env import _cli_server, _fast``,
each applies to every test there, as one defined in the module would."""
from __future__ import annotations

import pytest

from _forkcli import cli_server


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter."""


@pytest.fixture(scope="session", autouse=True)
def _cli_server():
    """The fork server, started before any test's leak check (tests/_forkcli.py): each
    ``drivestage`` command forked from it with its imports done (a fresh interpreter cost
    0.5 s of CPU to start, 2-3 s on a loaded machine)."""
    return cli_server()
