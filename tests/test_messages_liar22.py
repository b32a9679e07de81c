"""Messages of liar22 (a server answering about another item) that docs/troubleshooting.md
quotes, made to happen."""
from __future__ import annotations

import re

import pytest

import _cli
from _messages import renders, shown


@renders("the server answered for another item")
def test_a_listing_of_another_folders_items_is_one_line(emulator, proxy, local_state,
                                                          monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    emulator.add_file("Models/logs/epoch_001.pt", b"a")
    emulator.add_file("Models/other/epoch_001.pt", b"b")
    logs, other = emulator.find("Models/logs")["id"], emulator.find("Models/other")["id"]
    proxy.rewrite(rf"(?<=%27){re.escape(logs)}(?=%27)", other)
    code, out, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 1
    shown("the server answered for another item", err)


@renders("on Drive since it was listed; not deleted")
def test_a_checkpoint_renamed_since_the_listing_is_left_alone_with_a_warning(
        emulator, local_state, drive_env):
    fid = emulator.add_file("Models/logs/epoch_001.pt", b"1")
    emulator.add_file("Models/logs/epoch_002.pt", b"22")
    emulator.faults.lag_listing(updated=5)
    emulator.store.update_meta(fid, {"title": "keep_me.pt"})
    code, out, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    shown("on Drive since it was listed; not deleted", err)
    assert emulator.read_bytes(fid) == b"1"
