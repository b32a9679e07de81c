"""docs/troubleshooting.md, "Rate limits and flaky connections": the messages of attack 20's
bounds (see tests/_messages.py), each made to happen by the emulator behind the mutating
proxy of tests/_proxy.py, the command run in this process."""
from __future__ import annotations

import pytest

from _envs import env_user_lines_two_tries  # noqa: F401  (a fixture)
from _messages import command_error as error
from _messages import renders, shown
from _proxy import Proxy, Reply


@pytest.fixture
def proxy(emulator, env, monkeypatch):
    with Proxy(emulator.url) as p:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", p.url)
        yield p


def _to_itself(status: int, headers: dict, body: bytes) -> Reply:
    return Reply(302, {"Location": "/drive/v2/files?again=1", "Content-Length": "0"}, [b""])


@renders("the server answered with redirects that lead nowhere")
def test_redirects_in_a_loop(emulator, proxy):
    emulator.add_file("data/f.txt", b"x")
    proxy.on("GET", r"^/drive/v2/files", _to_itself, forward=False)
    line = error("ls", "drive:data")
    shown("the server answered with redirects that lead nowhere", line)
    assert proxy.count("GET", r"^/drive/v2/files") == 6  # httplib2's five redirects, no retry


@renders("folders nested more than … deep")
def test_folders_nested_without_end(emulator, proxy, tmp_path, monkeypatch):
    from test_attack20_bounds import _bottomless
    from drivestage import stage_walk

    monkeypatch.setattr(stage_walk, "MAX_DEPTH", 3)
    emulator.add_folder("data")
    proxy.on("GET", r"^/drive/v2/files\?.*in(\+|%20)parents", _bottomless(emulator.find("data")))
    line = error("pull", "drive:data", str(tmp_path / "dest"))
    shown("folders nested more than … deep", line)
