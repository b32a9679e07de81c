"""``drivestage emulator``'s bound options come from one table (cli.emulator.BOUNDS, emul47):
each sets the Emulator attribute of its name, so a name that is none would be set on the
emulator unseen and bound nothing; --max-upload-session-bytes reaches the emulator."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)
from test_emulator_cli import launch

from drivestage.cli.emulator import BOUNDS
from drivestage.emulator import Emulator


def test_every_bound_option_names_an_emulator_attribute():
    missing = [name for name, *_ in BOUNDS if not hasattr(Emulator, name)]
    assert missing == []


def test_the_session_bytes_option_reaches_the_emulator(tmp_path):
    proc, url, _ = launch("--data-dir", str(tmp_path / "d"), "--min-free-bytes", "0",
                          "--max-upload-session-bytes", "1KiB")
    try:
        req = urllib.request.Request(url + "upload/drive/v2/files?uploadType=resumable",
                                     data=json.dumps({"title": "a" * 2000}).encode(),
                                     method="POST", headers={"Authorization": "Bearer t",
                                                             "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=10).close()
            status, message = 200, ""
        except urllib.error.HTTPError as exc:
            status, message = exc.code, json.loads(exc.read())["error"]["message"]
        assert status == 413
        assert "keeps at most 1024 bytes of upload sessions' metadata" in message
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
