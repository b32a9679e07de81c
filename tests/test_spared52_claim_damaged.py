"""spared52: a claim file on Drive that is nested deep or huge (another client's, a damaged
upload) is a damaged claim, no one's, as one not JSON is (mount52's rule for the local JSON
readers). ``run_claims._read`` took json's RecursionError for a traceback: ``drivestage
dedupe`` of a pair whose newer folder held 4 KiB of ``[`` named ``trainer-lease-*.json``
ended in a RecursionError traceback (exit 1, fails on main d0e38cf9). A huge one is judged by
its listed size, never read (a guard: passes on main, where only the caller bounded it)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from drivestage.cli import cli
from drivestage.drive.resources import FOLDER_MIME
from drivestage.run_claims import _MAX_BYTES
from tests.test_messages_dedupe import live, put


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


def _folder(store, name: str, parent: str) -> str:
    f = store.drive.CreateFile({"title": name, "mimeType": FOLDER_MIME,
                                "parents": [{"id": parent}]})
    f.Upload()
    return f["id"]


@pytest.mark.parametrize("body", [b"[" * _MAX_BYTES, b'{"pid": 1, "host": "h", "x": "' +
                                  b"y" * 64 * 1024 + b'"}'], ids=["deep", "huge"])
def test_dedupe_takes_a_damaged_claim_for_no_ones(emulator, store, body):
    runs = emulator.add_folder("runs")
    old, new = _folder(store, "exp", runs), _folder(store, "exp", runs)
    put(emulator, store, old, "a.txt", b"a")
    put(emulator, store, new, "b.txt", b"b")
    put(emulator, store, new, "trainer-lease-dddd.json", body)

    r = CliRunner().invoke(cli, ["dedupe", "drive:runs/exp"])
    assert (r.exit_code, r.exception) == (0, None), r.stderr
    assert set(live(emulator)) == {"runs", "runs/exp", "runs/exp/a.txt", "runs/exp/b.txt"}
