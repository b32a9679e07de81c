"""Peak memory of `drivestage pull` does not grow with the file: chunks stream through."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

MiB = 1024 * 1024

# Runs the console script's main() and writes the process's own high-water RSS (VmHWM, kB)
# at exit. The rusage of a child is no good here: it starts from the parent's peak.
_RUN = """
import atexit, sys
out = sys.argv.pop(1)
def hwm():
    with open('/proc/self/status') as fh:
        kb = next(line.split()[1] for line in fh if line.startswith('VmHWM:'))
    with open(out, 'w') as fh:
        fh.write(kb)
atexit.register(hwm)
sys.argv[0] = 'drivestage'
from drivestage.cli import main
main()
"""


def _write(path, size: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as fh:
        for i in range(size // MiB):
            fh.write(i.to_bytes(8, "little") + block[8:])  # every MiB distinct


def _peak_kb(tmp_path, drive_env, *args: str) -> int:
    out = tmp_path / "hwm"
    env = dict(os.environ, **drive_env)
    proc = subprocess.run([sys.executable, "-c", _RUN, str(out), *args], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return int(out.read_text())


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
        peaks[size] = _peak_kb(tmp_path, drive_env, "pull", f"drive:data/f{size}.bin",
                               str(dest), "-q")
        assert os.path.getsize(dest / f"f{size}.bin") == size
        (dest / f"f{size}.bin").unlink()
    # Eight times the bytes, the same memory: only the chunks in flight are held. Without
    # returning freed chunks to the OS, the 512 MiB pull peaked 35-65 MB higher.
    assert peaks[512 * MiB] <= peaks[64 * MiB] + 16 * 1024, peaks
    assert peaks[512 * MiB] < 200 * 1024, peaks
