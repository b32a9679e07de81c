"""The memory an extraction takes per member: held to ``members.BYTES_PER_MEMBER``, so that
the largest archive drivestage accepts (``members.MAX_MEMBERS``) fits the bound stated there.

Before extractmem46 an extraction kept each member's ``ZipInfo`` or ``TarInfo`` (and
``tarfile`` a second list of them while it wrote a tar.gz), a copy of each entry for the
listing cache, a whole ``stat_result`` per file written and the orders of every member at
once for the worker processes: 1.8-2.2 KB a member, 4 GB at the member cap.

Measured in a child process of its own: its peak RSS (``VmHWM``) after extracting a small
archive of the same kind (imports, threads, caches: the base), then after a large one; the
difference is the large archive's members' cost, with their names as long as a dataset's.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

from drivestage.extract.members import BYTES_PER_MEMBER, MAX_MEMBERS

#: Members of the large archive: enough that their cost (some 10 MB) stands well above the
#: noise of the allocator (a few hundred KB), few enough to take a few seconds.
N = 20_000

_CHILD = """
import os, sys
from drivestage.extract import extract_archive

small, big, out = sys.argv[1:4]

def peak():
    with open('/proc/self/status') as fh:
        return int(next(l.split()[1] for l in fh if l.startswith('VmHWM:'))) * 1024

extract_archive(small, os.path.join(out, 'small'))
base = peak()
paths = extract_archive(big, os.path.join(out, 'big'))
print(base, peak(), sum(1 for p in paths if p.endswith('.txt')))
"""


def _names(n: int) -> list[str]:
    return [f"data/d{i // 1000:03d}/f{i:06d}.txt" for i in range(n)]


def _archive(path: str, kind: str, n: int) -> str:
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name in _names(n):
                zf.writestr(name, b"")
    else:
        with tarfile.open(path, "w:gz", compresslevel=1) as tf:
            for name in _names(n):
                tf.addfile(tarfile.TarInfo(name))
    return path


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_an_extraction_takes_at_most_the_stated_bytes_a_member(tmp_path, kind):
    small = _archive(str(tmp_path / f"small.{kind}"), kind, 200)
    big = _archive(str(tmp_path / f"big.{kind}"), kind, N)
    proc = subprocess.run([sys.executable, "-c", _CHILD, small, big, str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    base, peak, files = map(int, proc.stdout.split())
    assert files == N   # (every member written: the cost measured is a whole extraction's)
    per_member = (peak - base) / N
    assert per_member <= BYTES_PER_MEMBER, (
        f"{per_member:.0f} bytes a member (peak {peak >> 20} MiB, base {base >> 20} MiB)")


def test_the_member_cap_fits_the_stated_bound():
    """What members.MAX_MEMBERS says: the largest archive accepted stays under 1 GB."""
    assert MAX_MEMBERS * BYTES_PER_MEMBER <= 1_000_000_000
