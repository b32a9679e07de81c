"""A web page where Drive's answer should be, with a 200: a network filter's block page or a
captive portal's login page (behind a proxy that intercepts TLS, or on an http API root).
Read as Drive's JSON it was "the server's answer is not what Drive sends (TypeError: string
indices must be integers...); is --api-root / DRIVESTAGE_API_ROOT a Drive API?", on
Google's own API root too; in place of a file's bytes, "still failing after 8 attempts
(short body: 77 of 3145735 bytes announced)" after eight downloads. Now one line that says
it is a web page, quotes it and says what to do, at the first answer."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _messages import error_line
from _proxy import Reply

PAGE = b"<html><head><title>Hotel WiFi</title></head><body>Please log in</body></html>"
SAID = ("the answer is a web page ('<html> Hotel WiFi Please log in'), not Drive's: something "
        "between here and Drive answers in its place, a network filter (a company's or "
        "school's proxy) or a captive portal (the login page of a hotel's or café's Wi-Fi). "
        "Open a web page in a browser to see it (and log in to the network)")


def _page(status: int, headers: dict, body: bytes) -> Reply:
    return Reply(200, {"Content-Type": "text/html; charset=utf-8",
                       "Content-Length": str(len(PAGE))}, [PAGE])


def test_a_listing_answered_with_a_web_page(emulator, through):
    emulator.add_file("data/f.bin", b"x")
    through.on("GET", r"^/drive/v2/files\?", _page)
    code, _, err = run("ls", "drive:data")
    assert code == 1, err
    line = error_line(err)
    assert line.startswith("Error: list drive: (the top of My Drive): " + SAID), line
    assert through.count("GET", r"^/drive/v2/files\?") == 1   # not retried


def test_a_download_answered_with_a_web_page(emulator, through, tmp_path):
    """A 200 of another length than the file, which Drive still lists at its size: a page,
    not a new version; the pull stops at the first, nothing written."""
    data = os.urandom(300 * 1024)
    emulator.add_file("data/big.bin", data)
    through.on("GET", r"alt=media", _page)
    code, _, err = run("pull", "drive:data/big.bin", str(tmp_path / "out"))
    assert code == 1, err
    assert SAID in error_line(err), err
    assert through.count("GET", r"alt=media") == 1
    out = tmp_path / "out"
    assert not out.exists() or [p for p in os.listdir(out) if not p.startswith(".")] == []


def test_an_html_file_is_still_downloaded(emulator, through, tmp_path):
    """A file that is a web page, of the size Drive lists, is the file: it comes whole."""
    emulator.add_file("data/index.html", PAGE, mime_type="text/html")
    through.on("GET", r"alt=media", _page)
    code, _, err = run("pull", "drive:data/index.html", str(tmp_path / "out"))
    assert code == 0, err
    assert (tmp_path / "out" / "index.html").read_bytes() == PAGE


def _cut_short(status: int, headers: dict, body: bytes) -> Reply:
    """The emulator's answer less its last 10 bytes, with a length that says it is whole."""
    out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    return Reply(status, dict(out, **{"Content-Length": str(len(body) - 10)}), [body[:-10]])


@pytest.mark.parametrize("times", [1, None], ids=["once", "always"])
def test_a_json_answer_cut_short_is_asked_again(emulator, through, monkeypatch, times):
    """A 200 whose JSON object ends early (a proxy that cut it and fixed the length): read
    as a lost connection, asked again on a new one; it was "not what Drive sends (TypeError:
    string indices...); is --api-root / DRIVESTAGE_API_ROOT a Drive API?", at once."""
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    emulator.add_file("data/f.bin", b"x")
    through.on("GET", r"^/drive/v2/files\?", _cut_short, times=times)
    code, out, err = run("ls", "drive:data")
    if times == 1:
        assert code == 0 and "f.bin" in out, err
        assert through.count("GET", r"^/drive/v2/files\?") >= 2
        return
    assert code == 1, err
    line = error_line(err)
    assert "still failing after 3 attempts (the answer's JSON object is cut short (" in line, line
    assert through.count("GET", r"^/drive/v2/files\?") == 3
