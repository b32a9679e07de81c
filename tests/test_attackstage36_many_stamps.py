"""A folder pull keeps each stamp it read open (drivestage.stamp_cache: an open file's inode
number is never given to another file), up to a quarter of the open-file limit, 4096 at
most. A folder of a thousand staged files then has the descriptors after them numbered past
1024, and ``select.select`` refuses those: adding one big archive to such a folder made the
rerun end in a ``ValueError: filedescriptor out of range in select()`` traceback when its
extraction workers started (attackstage36). Through the real stack (emulator over HTTP)."""
from __future__ import annotations

import os
import resource
import zipfile
import io

import pytest

import _cli
from _envs import env  # noqa: F401  (a fixture)
from drivestage import stamp_cache
from test_attack15_extract import N   # enough members that worker processes write them


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), data)
    return buf.getvalue()


def test_a_big_archive_added_to_a_folder_of_a_thousand_staged_files(emulator, env, tmp_path,
                                                                     monkeypatch):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"needs an open-file limit of {want} (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    held: list[int] = []
    try:
        # What the cache allows under a soft limit of 16384 or more (set at its import).
        monkeypatch.setattr(stamp_cache, "_PINS", 4096)
        # A thousand descriptors this process holds already (a notebook's, say) stand for
        # most of the thousand stamps: the 64 the pull keeps open then end past 1024, and
        # the pipes and sockets opened after them too, as a folder of 1,040 files made
        # them (its uploads and reads were most of this test's time).
        n = 64
        held += [os.open(os.devnull, os.O_RDONLY) for _ in range(1000)]
        assert held[-1] + n > 1024
        for i in range(n):
            emulator.add_file(f"F/s{i:04d}.txt", b"%d" % i)
        emulator.add_file("F/a.zip", _zip({"ds/x": b"a"}))
        dest = tmp_path / "d"
        code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x")
        assert code == 0, err
        members = {f"z/{i}": b"z%d" % i * 50 for i in range(N)}
        emulator.add_file("F/z.zip", _zip(members))
        code, _, err = _cli.run("pull", "-q", "drive:F", str(dest), "-x")
        assert code == 0, err
        assert all((dest / "F" / p).read_bytes() == data for p, data in members.items())
        assert (dest / "F/s0063.txt").read_bytes() == b"63"
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
