"""A captive portal's usual answer is a redirect to its login page (302 with a page), not a
200: to a POST or a PUT (a folder's create, an upload's chunk) httplib2 does not follow it,
and the line was "Drive answered HTTP 302: <html> Hotel WiFi Please log in", as if Drive had
said it. Drive redirects none of them: now the web page's line (a portal, a filter; log in
to the network), at the first answer, and the rerun resumes the upload."""
from __future__ import annotations

import hashlib
import os

from _cli import run
from _messages import error_line
from _proxy import Reply
from test_attackserver42_pages import PAGE, SAID


def _to_login(status: int, headers: dict, body: bytes) -> Reply:
    return Reply(302, {"Location": "http://portal.invalid/login?from=drive",
                       "Content-Type": "text/html; charset=utf-8",
                       "Content-Length": str(len(PAGE))}, [PAGE])


def test_a_folder_create_sent_to_a_login_page(emulator, through, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    through.on("POST", r"^/drive/v2/files\?", _to_login, forward=False)
    code, _, err = run("push", str(src), "drive:D")
    assert code == 1, err
    assert error_line(err) == f"Error: create folder drive:D: {SAID}, or try another network; " \
        "or check --api-root / DRIVESTAGE_API_ROOT", err
    assert through.count("POST", r"^/drive/v2/files\?") == 1   # not retried
    assert emulator.find("D") is None


def test_an_upload_chunk_sent_to_a_login_page(emulator, through, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(3 * 1024 * 1024)
    (src / "big.pt").write_bytes(data)
    through.on("PUT", r"^/upload/drive/v2/files", _to_login, times=1, forward=False)
    code, _, err = run("push", "--chunk-size", "1MiB", str(src), "drive:D")
    assert code == 1, err
    line = error_line(err)
    assert line.startswith("Error: uploading ") and f"big.pt -> big.pt: {SAID}" in line, line
    code, _, err = run("push", str(src), "drive:D")
    assert code == 0, err
    assert [r["md5"] for r in emulator.store.all_files()
            if r.get("title") == "big.pt" and not r.get("trashed")] == \
        [hashlib.md5(data).hexdigest()]
