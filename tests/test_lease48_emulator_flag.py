"""lease48: ``drivestage emulator --ignore-if-match``: a write naming an etag the file does not
have is applied (a proxy that drops ``If-Match``), where the emulator otherwise answers 412."""
from __future__ import annotations

import json
import urllib.request

from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)
from test_emulator_cli import call, launch


def test_ignore_if_match_applies_a_patch_naming_a_stale_etag():
    proc, url, _ = launch("--ignore-if-match")
    try:
        made = call(url, "/drive/v2/files", "POST", {"title": "before"})
        request = urllib.request.Request(
            url + f"drive/v2/files/{made['id']}", data=json.dumps({"title": "after"}).encode(),
            method="PATCH", headers={"Authorization": "Bearer tok", "If-Match": '"stale/0"',
                                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200
            assert json.loads(resp.read())["title"] == "after"
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
