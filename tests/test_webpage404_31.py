"""A 404 answered with a web page (a wrong --api-root, a proxy's own page) was taken for
Drive's "not found": `not found on Drive (HTTP 404: <html>…)`, and as a NotFoundError, which
callers read as "gone" (a folder --delete asks for its mark, a stamp's file). Drive's 404s
are JSON with a reason (attackhs31's note). In-process CLI against the emulator behind
tests/_proxy.py."""
from __future__ import annotations

import _cli
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _proxy import Reply

PAGE = b"<!DOCTYPE html><html><body><p>404. That's an error.</p></body></html>"


def _page(status: int, headers: dict, body: bytes) -> Reply:
    return Reply(404, {"Content-Type": "text/html", "Content-Length": str(len(PAGE))}, [PAGE])


def test_a_404_web_page_is_no_drive_not_found(emulator, proxy, liar_env, tmp_path):
    emulator.add_file("data/x.zip", b"z" * 100)
    proxy.on("GET", r"^/drive/v2/files", _page)

    code, out, err = _cli.run("pull", "drive:data/x.zip", str(tmp_path / "d"))

    assert "Traceback" not in err
    line = one_error_line(code, err)
    assert "not found on Drive" not in line, line
    assert line.endswith("the server answered HTTP 404 with a web page ('404. That's an "
                         "error.'), not Drive's answer; is --api-root / DRIVESTAGE_API_ROOT a "
                         "Drive API, or does a proxy stand between here and Drive?"), line
    assert not (tmp_path / "d" / "x.zip").exists()
