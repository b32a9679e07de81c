"""Drive's gzipped JSON answers (the emulator's ``gzip_answers``), by fidelity33.

googleapiclient asks every API call for ``Accept-Encoding: gzip, deflate`` with ``(gzip)`` in
its User-Agent, which is how Google's APIs are asked for gzipped answers (Drive's
performance guide): real Drive sends its listings, resources, batch answers and error
envelopes gzipped. The emulator sent none, so no test met them but through a test proxy.
Media is asked for as it is (``identity``) and is never gzipped."""
from __future__ import annotations

import pytest

from _cli import run
from _drive_state import live_md5s
from _liar import one_error_line
from drivestage.sizes import format_size
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)
from test_runmark30_marks import OURS, marks_of


@pytest.fixture
def gzipped(emulator):
    emulator.gzip_answers = True
    return emulator


def _encodings(emulator, kind: str) -> set[str]:
    return {r.encoding for r in emulator.requests if r.kind == kind and not r.in_batch}


def test_a_push_prune_and_pull_read_drives_gzipped_answers(gzipped, env, tmp_path):
    """Listings, the mark's read-back, batch answers: each gzipped, each read (a batch
    answer not read would have each item read alone, 2 requests a file)."""
    emulator = gzipped
    folder = emulator.add_folder("runs/a")     # made before the run: marked, then read back
    src = tmp_path / "a"
    src.mkdir()
    for epoch in (1, 2, 3):
        _save(str(src), epoch)
    code, _, err = run("push", str(src), "drive:runs/a", "--keep-last", "3")
    assert code == 0, err
    assert "could not mark" not in err
    assert marks_of(emulator, folder) == OURS
    emulator.clear_requests()

    code, _, err = run("prune", "drive:runs/a", "--keep-last", "1")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs/a")) == {"epoch_003.pt", "epoch_003.json"}
    deletes = [r for r in emulator.requests if r.kind == "files.delete"]
    assert len(deletes) == 4 and all(r.in_batch for r in deletes)
    assert _encodings(emulator, "batch") == {"gzip"}
    assert _encodings(emulator, "files.list") == {"gzip"}
    emulator.clear_requests()

    dest = tmp_path / "back"
    code, _, err = run("pull", "drive:runs/a", str(dest))
    assert code == 0, err
    for name in ("epoch_003.pt", "epoch_003.json"):
        assert (dest / "a" / name).read_bytes() == (src / name).read_bytes()
    assert _encodings(emulator, "media.download") == {""}   # asked as it is


def test_a_gzipped_refusal_is_read_for_its_reason(gzipped, env, tmp_path):
    """An error envelope gzipped (Drive's 403 storageQuotaExceeded on an upload's start):
    its reason is what the message says."""
    emulator = gzipped
    run_dir = tmp_path / "exp1"
    run_dir.mkdir()
    path = _save(str(run_dir), 1)
    emulator.faults.inject("POST", r"uploadType=resumable", reason="storageQuotaExceeded")

    code, _, err = run("push", str(run_dir), "drive:runs/exp1", "--jobs", "1")

    size = format_size(len(open(path, "rb").read()))
    assert one_error_line(code, err) == (
        f"Error: Not enough Drive storage for {path} -> epoch_001.pt: needed {size}, in trash "
        "0 B. Free space on Drive, or prune with a policy (--keep-last/--max-bytes).")
    refused = [r for r in emulator.requests if r.status == 403]
    assert [r.encoding for r in refused] == ["gzip"]
