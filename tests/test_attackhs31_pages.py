"""A listing's last page with ``"nextPageToken": ""`` (attackhs31).

Google's list APIs end a listing with an empty next-page token as with none (AIP-158: "if
this field is omitted, there are no subsequent pages", and proto3 sends an empty string as
an omitted field; several Cloud APIs' references say "if the value is empty, ... no further
results"); drivestage's shared-drive lookup already read it so. The files listing followed the empty token, was given the first
page again, and stopped every pull, push and prune with "Drive sent the same page token
twice ... the listing would never end". In-process CLI against the emulator behind
tests/_proxy.py.
"""
from __future__ import annotations

import json

import _cli
from _liar import liar_env  # noqa: F401 (fixtures)
from _proxy import Reply

LISTINGS = r"^/drive/v2/files\?"


def _empty_token(status: int, headers: dict, body: bytes) -> Reply:
    """A listing page that ends the listing with an empty token instead of none."""
    obj = json.loads(body)
    if "items" in obj and not obj.get("nextPageToken"):
        obj["nextPageToken"] = ""
    data = json.dumps(obj).encode()
    out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    out["Content-Length"] = str(len(data))
    return Reply(status, out, [data])


def test_an_empty_next_page_token_ends_the_listing(emulator, proxy, liar_env, tmp_path):
    emulator.add_file("VOC/a.bin", b"a" * 10)
    emulator.add_file("VOC/sub/b.bin", b"b" * 20)
    proxy.on("GET", LISTINGS, _empty_token)
    dest = tmp_path / "d"
    code, out, err = _cli.run("pull", "drive:VOC", str(dest))
    assert code == 0, err[-2000:]
    assert (dest / "VOC" / "a.bin").read_bytes() == b"a" * 10
    assert (dest / "VOC" / "sub" / "b.bin").read_bytes() == b"b" * 20
    # One listing each: VOC looked up by name, then VOC's and sub's children; and those two
    # again once the files came (attack49: nothing changed on Drive during the pull).
    assert proxy.count("GET", LISTINGS) == 5

    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_bytes(b"epoch\n1\n")
    code, out, err = _cli.run("push", str(src), "drive:Models/logs")
    assert code == 0, err[-2000:]
    assert emulator.find("Models/logs/results.csv") is not None
