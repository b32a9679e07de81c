"""Drive's About answered 200 with a web page (attackhs31).

A captive portal, or a network filter that rewrites answers, answers ``about.get`` 200 with
its own page. Every other metadata answer of that kind was already one line ("the server's
answer is not what Drive sends"); the quota's raised ``AttributeError: 'str' object has no
attribute 'get'`` out of ``drivestage quota`` and out of every push (which reads the quota
before it sends a byte). In-process CLI against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import pytest

import _cli
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _proxy import Reply

PAGE = b"<html><body>Please sign in to the Wi-Fi to continue</body></html>"


def _portal(status: int, headers: dict, body: bytes) -> Reply:
    return Reply(200, {"Content-Type": "text/html", "Content-Length": str(len(PAGE))}, [PAGE])


@pytest.mark.parametrize("command", [["quota"], ["push", "SRC", "drive:Models/run"]],
                         ids=["quota", "push"])
def test_an_about_answered_with_a_web_page_is_one_line(emulator, proxy, liar_env, tmp_path,
                                                       command):
    src = tmp_path / "src"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"w" * 100)
    proxy.on("GET", r"^/drive/v2/about", _portal)
    code, out, err = _cli.run(*[str(src) if a == "SRC" else a for a in command])
    assert "Traceback" not in err
    line = one_error_line(code, err)
    # (attackserver42: a 2xx web page is told as one wherever it comes, before it is read
    # as Drive's JSON; it was "the server answered '...', not Drive's About resource; is
    # --api-root / DRIVESTAGE_API_ROOT a Drive API?")
    assert line.startswith("Error: read the Drive quota: the answer is a web page ('<html> "
                           "Please sign in to the Wi-Fi to continue'), not Drive's: "), line
    assert emulator.find("Models/run/epoch_001.pt") is None


def test_a_folder_create_answered_with_a_web_page_is_one_line(emulator, proxy, liar_env,
                                                              tmp_path):
    """The create of DEST's folder answered 200 with a page: a ``ValueError`` out of
    ``dict()`` in the ids module, a traceback; now one line naming the folder."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"w" * 100)
    proxy.on("POST", r"^/drive/v2/files\?", _portal)
    code, out, err = _cli.run("push", str(src), "drive:Models/new")
    assert "Traceback" not in err
    line = one_error_line(code, err)
    assert line.startswith("Error: create folder drive:Models: the answer is a web page "
                           "('<html> Please sign in to the Wi-Fi to continue'), not Drive's: "
                           ), line
    assert line.endswith("or check --api-root / DRIVESTAGE_API_ROOT"), line
    assert emulator.find("Models/new/epoch_001.pt") is None
