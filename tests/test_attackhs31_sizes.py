"""A binary file listed with its checksum but without ``fileSize`` (attackhs31).

Drive lists a size for every file with content (the v2 reference: only folders, shortcuts
and other items without bytes have none); a proxy or a server that is not Drive may leave it
out. drivestage took the size as 0: it downloaded nothing, twice, and ended with "the
downloaded bytes do not match Drive ... twice ... something between here and Drive alters
data", blaming the transport for what the listing left out. Now the file is refused before
any download, in one line that says what is missing; a folder pull offers to leave it out.
In-process CLI against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import json
import os

import _cli
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _proxy import Reply

METADATA = r"^/drive/v2/files(/[^/?]+)?\?(?!.*alt=media)"


def _without_size(file_id: str):
    """files.get and files.list answers with ``file_id``'s ``fileSize`` left out."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        obj = json.loads(body)
        for res in obj.get("items", [obj]):
            if res.get("id") == file_id:
                res.pop("fileSize", None)
        data = json.dumps(obj).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(data))
        return Reply(status, out, [data])
    return mutate


def test_a_file_listed_without_its_size_is_refused_before_any_download(
        emulator, proxy, liar_env, tmp_path):
    fid = emulator.add_file("data/f.bin", os.urandom(300 << 10))
    proxy.on("GET", METADATA, _without_size(fid))
    dest = tmp_path / "dest"
    line = one_error_line(*_cli.run("pull", "drive:data/f.bin", str(dest))[::2])
    assert line.startswith("Error: drive:data/f.bin: Drive lists no size for it (no "
                           "fileSize)"), line
    assert "do not match" not in line and "check --api-root" in line
    assert proxy.count("GET", "alt=media") == 0
    assert not dest.exists() or not [p for p in dest.iterdir() if not p.name.startswith(".")]


def test_a_folder_pull_names_the_sizeless_file_and_how_to_leave_it_out(
        emulator, proxy, liar_env, tmp_path):
    emulator.add_file("data/a.bin", b"a" * 1000)
    fid = emulator.add_file("data/b.bin", b"b" * 1000)
    proxy.on("GET", METADATA, _without_size(fid))
    code, out, err = _cli.run("pull", "drive:data", str(tmp_path / "dest"))
    line = one_error_line(code, err)
    assert "drive:data/b.bin: Drive lists no size for it" in line, line
    assert line.endswith("--exclude 'b.bin'"), line
    assert proxy.count("GET", "alt=media") == 0
