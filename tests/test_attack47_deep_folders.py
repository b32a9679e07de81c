"""The folders above an archive's members cost memory too: every folder's path is a string
of its own, held by the checks, the merge plan and the writing, and a member's folders
take its path's length times its depth. Before attack47 nothing bounded them before the
checks that refuse a path too deep or too long had built them all:

- one member of 20,000 folders (``a/a/…/f``, a tar.gz of 210 bytes) took 417 MB and 2 s
  before "lies 20000 folders deep" (a pax name may be 1 MiB: 500,000 folders, 250 GB);
- 5,000 members each in its own 19 folders of 200 bytes (a tar.gz of 416 KB, every path
  legal) took 690 MB to extract, 138 KB a member.

Measured in a child process (its own VmHWM, as tests/test_extractmem46_peak.py does).
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile

import pytest

import drivestage
from drivestage.extract import members

_CHILD = """
import sys
from drivestage.extract import extract_archive
from drivestage.extract import members

members.MAX_MEMBERS = int(sys.argv[3])

def peak():
    with open('/proc/self/status') as fh:
        return int(next(l.split()[1] for l in fh if l.startswith('VmHWM:'))) * 1024

base = peak()
try:
    extract_archive(sys.argv[1], sys.argv[2])
    said = 'extracted'
except Exception as exc:
    said = str(exc)
print(peak() - base)
print(said)
"""


def _tgz(path, names) -> str:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for name in names:
            tf.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    return str(path)


def _extract(archive: str, out: str, cap: int = members.MAX_MEMBERS) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, archive, out, str(cap)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    grew, said = proc.stdout.split("\n", 1)
    return int(grew), said.strip()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_a_member_too_deep_is_refused_before_its_folders_are_made(tmp_path):
    archive = _tgz(tmp_path / "deep.tar.gz", ["a/" * 20_000 + "f"])
    grew, said = _extract(archive, str(tmp_path / "out"))
    assert said.startswith("member 'a/a/a/") and said.endswith(
        "... of deep.tar.gz lies 20000 folders deep; drivestage extracts members at most 256 "
        "folders deep: flatten it in the archive"), said
    assert grew < 40 << 20, f"{grew >> 20} MiB"
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_folders_count_toward_the_member_caps_memory(tmp_path):
    """1,000 members, each in 19 folders of its own (4,000-byte paths): about 150 MB of
    folder paths. Under a cap of 100,000 members (63.9 MiB with the allowance for names) the
    archive is refused while listed, the memory grown well under that; their names alone
    (4 MB) would pass it."""
    chain = ("d" * 200 + "/") * 19
    archive = _tgz(tmp_path / "chains.tar.gz", [f"{i:04d}{chain}f" for i in range(1000)])
    grew, said = _extract(archive, str(tmp_path / "out"), cap=100_000)
    assert said.startswith(f"{archive}: the names of its first ") and said.endswith(
        "more than the 63.9 MiB of memory drivestage lists one archive in (100,000 members "
        "of short names); split it into smaller archives"), said
    assert grew < 63 << 20, f"{grew >> 20} MiB"


def test_a_path_longer_than_linux_takes_is_refused_as_listed(tmp_path):
    archive = _tgz(tmp_path / "long.tar.gz", [("d" * 200 + "/") * 25 + "f"])
    with pytest.raises(drivestage.errors.ArchiveError) as caught:
        members.list_members(archive)
    assert str(caught.value) == (
        f"member {('d' * 200 + '/')[:80]!r}... of long.tar.gz is a 5,026-byte path, longer "
        "than the 4,095 bytes Linux takes: shorten its folder names in the archive")
