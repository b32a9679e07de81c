"""What the liar22 tests share: the CLI in this process talks to the emulator through a
mutating proxy (tests/_proxy.py), and a failure must be exit 1 with one ``Error:`` line."""
from __future__ import annotations

import json
from typing import Callable

import pytest

from _messages import error_line
from _proxy import Reply


@pytest.fixture
def liar_env(proxy, local_state, monkeypatch):
    """The CLI in this process talks to the emulator through the proxy."""
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "5")
    return local_state


def one_error_line(code: int, err: str) -> str:
    """The one ``Error:`` line of a command that exited 1."""
    assert code == 1, err[-2000:]
    return error_line(err)


def kept_nothing_of(emulator, title: str) -> tuple[Callable, list[str]]:
    """A proxy rule: each upload that made ``title`` answered as Drive answered it, and the
    file gone at once (a server or proxy that does not keep what it answers for; another
    client's deletion the moment it landed). The rule, and the ids it made go."""
    lost: list[str] = []

    def mutate(status, headers, body):
        try:
            res = json.loads(body)
        except ValueError:
            res = None
        if status == 200 and isinstance(res, dict) and res.get("title") == title:
            emulator.store.delete(res["id"])
            lost.append(res["id"])
        return Reply(status, headers, [body])
    return mutate, lost
