"""attackd51: a file on a FUSE mount that grows while the look again re-hashes it (fuse51).

A folder pull from a FUSE or network mount reads each staged file again at its end and
compares its md5 with the bytes staged (stage_recheck._hashed_again). That read went to the
file's end, however far: a file that grew meanwhile (a log another machine appends to, a
revision many times larger shown by the mount mid-read) was read whole before it was called
changed, and one that kept growing held the pull as long as it grew (the kernel's FUSE client
asks the daemon for the size again at each read past the end it knew). More bytes than were
staged is a change already: the re-read stops there. Here ``a.bin`` (1 MiB, staged) grows to
16 MiB as its re-read's third block is asked for (the mount's catch-up at that read): on main
136c4bb2 the re-read asked the mount for all 16 MiB before the same
line (4,097 reads of 4 KiB); now about as many as the MiB staged takes (258).
"""
from __future__ import annotations

import pytest

import drivestage
from drivestage.errors import RemoteChangedError

from _drivemount import working_drive_mount  # noqa: F401  (a fixture)

MTIME = 1_000_000_000 * 10**9
MIB = 1 << 20


def test_a_file_that_grows_during_its_re_read_is_not_read_past_what_was_staged(
        working_drive_mount, tmp_path):
    mount = working_drive_mount
    mount.change_on_drive("MyDrive/ds/a.bin", b"a" * MIB, MTIME)
    mount.change_on_drive("MyDrive/ds/b.txt", b"b" * 100, MTIME)
    mount.catch_up()
    src, out = mount.point / "MyDrive" / "ds", tmp_path / "out"
    at: list = []

    def progress(label, total, initial):
        def arrived(n: int) -> None:
            if not at and (out / "ds" / "a.bin").exists():
                # a.bin staged: the reads from here are b.txt's and the look again's
                at.append(mount.reads)
                mount.change_on_drive("MyDrive/ds/a.bin", b"A" * (16 * MIB), MTIME)
                mount.catch_up_at_read = mount.reads + 3
        return arrived

    with pytest.raises(RemoteChangedError) as caught:
        drivestage.pull(str(src), str(out), jobs=1, progress=progress)
    assert at and mount.reads >= at[0] + 3, "the mount never showed the growth"
    assert str(caught.value).startswith(f"{src}/a.bin changed in its folder while this pull "
                                        "ran"), caught.value
    # 1 MiB staged: its 256 reads of 4 KiB and a few more, not the 16 MiB (4096) it holds now.
    assert mount.reads - at[0] <= 320, mount.reads - at[0]
