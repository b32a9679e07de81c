"""A staged copy rewritten with the same size (attackds29): fuse28 took an mtime that is the
stamped one at a coarser granularity, truncated or rounded, for the staged copy (a Drive
mount seen anew shows milliseconds). Rounded up to a whole second, that is what a rewrite
one second later looks like on a file system that keeps whole seconds (ext3, ext4 with
128-byte inodes, HFS+, sshfs), or a rewrite on the second on a Drive mount: the rerun said
`already staged` and kept the other bytes. Reproduced on a real ext4 -I 128 loop mount
(timestamps of whole seconds); the tests set the times such a file system shows."""
from __future__ import annotations

import os

import pytest

import _cli
from _envs import env  # noqa: F401  (a fixture)

SECOND = 10**9


@pytest.mark.parametrize("stamped, rewritten", [
    (1_764_900_001 * SECOND, 1_764_900_002 * SECOND),              # whole seconds: a second on
    (1_764_900_000_600_000_000, 1_764_900_001 * SECOND),           # ms (a Drive mount): on the s
    (1_764_900_001_500_000_000, 1_764_900_002 * SECOND),           # ms, at a 2 s boundary
])
def test_a_same_size_rewrite_a_moment_later_is_no_staged_copy(emulator, env, tmp_path,
                                                               stamped, rewritten):
    emulator.add_file("p/a.txt", b"label: cat\n")
    dest = tmp_path / "d"
    dest.mkdir()
    target = dest / "a.txt"
    # The copy in place when the pull came (the same bytes), with the file system's time:
    # verified by its checksum and stamped with that mtime.
    target.write_bytes(b"label: cat\n")
    os.utime(target, ns=(stamped, stamped))
    code, _, err = _cli.run("pull", "drive:p/a.txt", str(dest))
    name, value = _cli.summed(b"label: cat\n").split()
    assert code == 0 and f"already there, {name} verified (11 B, {name} {value}, " in err, err
    target.write_bytes(b"label: dog\n")     # another program, a moment later, same size
    os.utime(target, ns=(rewritten, rewritten))

    code, _, err = _cli.run("pull", "drive:p/a.txt", str(dest))

    assert code == 0, err
    assert target.read_bytes() == b"label: cat\n", err


def test_a_drive_mount_s_truncated_times_still_count_as_the_staged_copy(emulator, env,
                                                                          tmp_path):
    """The other side (fuse28): nanoseconds stamped, shown again at ms or s, truncated, or
    rounded to the ms: the staged copy, nothing fetched."""
    from drivestage.stage_decide import same_mtime
    stamped = 1_764_900_000_623_456_789
    assert same_mtime(1_764_900_000_623_000_000, stamped)
    assert same_mtime(1_764_900_000_623_457_000, stamped)
    assert same_mtime(1_764_900_000 * SECOND, stamped)
    assert not same_mtime(1_764_900_001 * SECOND, stamped)       # rounded to the second
    assert not same_mtime(1_764_900_002 * SECOND, 1_764_900_001 * SECOND)
    assert same_mtime(1_764_900_000 * SECOND, 1_764_900_001 * SECOND)   # 2 s (FAT), truncated
