"""attackstream40: a token given through a pipe (``--credentials <(vault read …)``, a FIFO),
so that it never sits on disk, whose access token has expired.

The refresh saved the new token back where it was read: the FIFO was replaced by a regular
file holding the token, the refresh token and the client secret. Nothing is saved back to a
pipe now; the command goes on with the refreshed token. A token file that cannot be written
(a read-only folder) no longer fails a command whose refresh worked: a warning says so.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import threading

import pytest

from _tmpfs import _libc
from drivestage.drive import connect
from test_auth import FRESH, _token_file, clean_env, emu, token_server  # noqa: F401 (fixtures)


def test_a_token_read_from_a_fifo_is_refreshed_and_not_written_back(
        clean_env, emu, token_server, tmp_path):
    text = open(_token_file(tmp_path / "src.json", token_server.uri, expired=True)).read()
    os.unlink(tmp_path / "src.json")
    fifo = str(tmp_path / "token.fifo")
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w") as f:
            f.write(text)

    feeder = threading.Thread(target=feed)
    feeder.start()
    emu.add_file("data/a.txt", b"hello")
    store = connect(api_root=emu.url, credentials=fifo)
    assert store.resolve("data/a.txt").size == 5
    feeder.join(30)
    assert [c["grant_type"] for c in token_server.calls] == ["refresh_token"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    # (No copy of the token left on disk beside it: the emulator's data folder aside.)
    assert [p.name for p in tmp_path.iterdir() if not p.is_dir()] == ["token.fifo"]


def test_a_token_file_in_a_read_only_folder_is_refreshed_and_the_command_goes_on(
        clean_env, emu, token_server, tmp_path, caplog):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = _token_file(folder / "token.json", token_server.uri, expired=True)
    emu.add_file("data/a.txt", b"hello")
    # A read-only bind mount of the folder (root ignores modes): MS_BIND, then
    # MS_REMOUNT | MS_BIND | MS_RDONLY.
    if _libc().mount(os.fsencode(folder), os.fsencode(folder), None, 4096, None) != 0:
        pytest.skip("a read-only bind mount needs root")
    if _libc().mount(None, os.fsencode(folder), None, 4096 | 32 | 1, None) != 0:
        _libc().umount2(os.fsencode(folder), 2)
        pytest.skip("a read-only bind mount needs root")
    try:
        before = open(path).read()
        with caplog.at_level(logging.WARNING, logger="drivestage"):
            store = connect(api_root=emu.url, credentials=path)
            assert store.resolve("data/a.txt").size == 5
        assert open(path).read() == before
    finally:
        _libc().umount2(os.fsencode(folder), 2)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"could not save the refreshed token to {path} (Read-only file system); this "
        "command goes on with it, and the next one refreshes it again"]
    assert json.loads(before)["token"] != FRESH
