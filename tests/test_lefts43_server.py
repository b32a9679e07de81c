"""Two remote facts that were told wrong (attackserver42's leftovers): an item titled "" on
Drive made a pull exit 2, a usage error, though nothing the user typed was wrong; and a web
page answering a file's bytes with no Content-Length (chunked, or up to the connection's
close) was read whole, then failed the md5 twice ("do not match ... twice") instead of the
web page's line at its first bytes."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _messages import error_line
from _proxy import Reply
from drivestage.drive import connect

PAGE = b"<html><head><title>Hotel WiFi</title></head><body>Please log in</body></html>"
SAID = ("the answer is a web page ('<html> Hotel WiFi Please log in", "), not Drive's: "
        "something between here and Drive answers in its place")


def _titled(emu, file_id: str, title: str) -> None:
    """Rename ``file_id`` on Drive (a files.patch, as another client would)."""
    connect(api_root=emu.url, token="test-token").service.files().patch(
        fileId=file_id, body={"title": title}, supportsAllDrives=True).execute()


@pytest.mark.parametrize("pulled", ["folder", "file"])
def test_an_item_titled_empty_on_drive_is_a_remote_fact_named_by_id(emulator, drive_env,
                                                                    tmp_path, pulled):
    emulator.add_file("F/a.txt", b"a")
    file_id = emulator.add_file("F/b.txt", b"b")
    _titled(emulator, file_id, "")
    src = "drive:F" if pulled == "folder" else f"drive:id:{file_id}"
    code, _, err = run("pull", src, str(tmp_path / "dest"), "-q")
    assert code == 1, err
    line = error_line(err)
    assert file_id in line and "title" in line and "rename it on Drive" in line, line


@pytest.mark.parametrize("length", ["endless", "the file's"])
def test_a_web_page_without_a_length_for_a_files_bytes_is_told_at_its_first_bytes(
        emulator, through, tmp_path, length):
    """No Content-Length: endless (read whole, "it kept sending"), or as long as the file
    (read whole twice, then "do not match ... twice")."""
    size = 300 * 1024
    emulator.add_file("data/big.bin", os.urandom(size))

    def page(status: int, headers: dict, body: bytes) -> Reply:
        def endless():
            yield PAGE
            while True:
                yield b"<p>" + b"x" * 4096 + b"</p>"
        sized = [PAGE, b" " * (size - len(PAGE))]
        return Reply(200, {"Content-Type": "text/html; charset=utf-8"},
                     endless() if length == "endless" else sized)

    through.on("GET", r"alt=media", page)
    code, _, err = run("pull", "drive:data/big.bin", str(tmp_path / "out"))
    assert code == 1, err
    line = error_line(err)
    assert SAID[0] in line and SAID[1] in line, line
    assert through.count("GET", r"alt=media") == 1       # once, not retried nor re-read
    out = tmp_path / "out"
    assert not out.exists() or [p for p in os.listdir(out) if not p.startswith(".")] == []
