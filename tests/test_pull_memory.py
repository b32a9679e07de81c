"""Peak memory of `drivestage pull` does not grow with the file: chunks stream through."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from peak import run_drivestage  # noqa: E402  (bench/peak.py: the child's own peak RSS)

MiB = 1024 * 1024


def _write(path, size: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as fh:
        for i in range(size // MiB):
            fh.write(i.to_bytes(8, "little") + block[8:])  # every MiB distinct


def _peak_kb(drive_env, *args: str) -> int:
    proc, peak = run_drivestage(list(args), env=dict(os.environ, **drive_env))
    assert proc.returncode == 0, proc.stderr
    return peak // 1024


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_peak_memory_is_the_same_for_a_small_and_a_large_file(emulator, drive_env, tmp_path):
    peaks = {}
    for size in (64 * MiB, 512 * MiB):
        src = tmp_path / f"f{size}.bin"
        _write(src, size)
        emulator.add_file(f"data/f{size}.bin", str(src))
        src.unlink()
        dest = tmp_path / f"out{size}"
        # The same number of streams for both (found by measuring, a larger file may get
        # more, each with its buffers): only the file's size differs.
        peaks[size] = _peak_kb(drive_env, "pull", f"drive:data/f{size}.bin",
                               str(dest), "-q", "-j", "4")
        assert os.path.getsize(dest / f"f{size}.bin") == size
        (dest / f"f{size}.bin").unlink()
    # Eight times the bytes, the same memory: only the chunks in flight are held, and the
    # blocks waiting for the hash (at most _FEED_MAX of 1 MiB, which the larger pull may fill
    # and the smaller may not). Without returning freed chunks to the OS, the 512 MiB pull
    # peaked 35-65 MB higher.
    from drivestage.prefix_hash import FEED_MAX as _FEED_MAX

    assert peaks[512 * MiB] <= peaks[64 * MiB] + 16 * 1024 + _FEED_MAX * 1024, peaks
    assert peaks[512 * MiB] < 200 * 1024, peaks
