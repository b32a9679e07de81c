"""Messages of conn35: a name lookup the resolver never answers."""
from __future__ import annotations

import threading

from _messages import command_error, renders, shown
from test_conn35_lookups import _HungResolver


@renders("the name lookup of … took more than … s (DRIVESTAGE_HTTP_TIMEOUT)")
def test_a_pull_whose_name_lookup_never_ends(emulator, local_state, tmp_path, monkeypatch):
    resolver = _HungResolver(monkeypatch, emulator)
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", resolver.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "0.3")
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    try:
        line = command_error("pull", "drive:data/a.bin", str(tmp_path / "d"))
    finally:
        resolver.let_go.set()
    shown("the name lookup of … took more than … s (DRIVESTAGE_HTTP_TIMEOUT)", line)
    assert "localhost" in line and "still failing after 2 attempts" in line, line
    for thread in threading.enumerate():
        if thread.name == "drivestage-lookup":
            thread.join(30)
