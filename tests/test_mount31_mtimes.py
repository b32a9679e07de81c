"""A pull into a Google Drive mount judged by mtimes after a remount (mount31): a mount seen
anew shows each file with Drive's time (milliseconds, or whole seconds by some accounts), not
the nanoseconds stamped. A coarser time counts as the stamped one only where the mount shows
its files at that granularity: the stamp itself, written after the file, shows it too
(``drivestage.mtimes.same_mtime``'s ``shown``)."""
from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from _cli import run
from _drivemount import working_drive_mount  # noqa: F401 (fixture)

SECOND = 10**9


def _stamp(mount, name: str) -> tuple[str, dict]:
    """(path below the mount, the stamp) of the one stamp of ``name`` in the mount."""
    found = [(p, json.loads(b)) for p, b in mount.cached().items()
             if "/.drivestage/" in p and p.rsplit("/", 1)[1].startswith(name + "@")]
    assert len(found) == 1, found
    return found[0]


def test_the_older_file_at_a_whole_second_beside_the_new_stamp_is_staged_again(
        local_state, tmp_path, working_drive_mount):
    """DriveFS sent the pull's new stamp and not yet the file it staged; the mount stopped.
    Remounted, the mount shows the new stamp beside the older file, whose time on Drive
    fell on a whole second (one of Drive's times in 1,000), the second the new version was
    stamped in: it passed for that version truncated to seconds, and the old bytes were
    "already staged" though the stamp itself showed milliseconds."""
    mount = working_drive_mount
    src, dest = tmp_path / "set.bin", mount.point / "MyDrive" / "data"
    v1, v2 = os.urandom(100_000), os.urandom(100_000)
    src.write_bytes(v1)
    code, _, err = run("pull", str(src), str(dest))
    assert code == 0, err
    mount.flush()
    src.write_bytes(v2)
    code, _, err = run("pull", str(src), str(dest))
    assert code == 0, err
    mount.send(lambda path: "/.drivestage/" in path)   # the stamp, not set.bin
    where, stamp = _stamp(mount, "set.bin")
    mount.sent_at("MyDrive/data/set.bin", stamp["mtime_ns"] // SECOND * SECOND)
    mount.sent_at(where, stamp["mtime_ns"] // SECOND * SECOND + 123_000_000)
    mount.disconnect()
    back = mount.remount()
    try:
        assert (dest / "set.bin").read_bytes() == v1   # what Drive had
        code, _, err = run("pull", str(src), str(dest))
        assert code == 0, err
        assert (dest / "set.bin").read_bytes() == v2, err   # was: v1, "already staged"
    finally:
        back.stop()


def _tar(members: dict[str, bytes], mtime: float) -> bytes:
    """A pax tar whose members' times have a fraction of a second (kept as nanoseconds)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            info.pax_headers = {"mtime": f"{mtime:.9f}"}
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("grain", [10**6, SECOND], ids=["ms", "s"])
def test_a_remounted_mount_at_a_coarser_granularity_keeps_what_is_staged(
        local_state, tmp_path, working_drive_mount, grain):
    """Staged and extracted in one Colab session, seen in the next at Drive's milliseconds
    or whole seconds (truncated): every rerun there is "already staged", none extracts or
    downloads again."""
    mount = working_drive_mount
    src, dest = tmp_path / "set.tar", mount.point / "MyDrive" / "data"
    src.write_bytes(_tar({"ds/a.txt": b"alpha", "ds/b.txt": b"beta"}, 1_764_900_000.6234567))
    code, _, err = run("pull", str(src), str(dest), "-x")
    assert code == 0, err
    mount.flush()
    mount.disconnect()
    back = mount.remount(grain)
    try:
        assert os.stat(dest / "ds" / "a.txt").st_mtime_ns % grain == 0
        for _ in range(2):
            code, _, err = run("pull", str(src), str(dest), "-x")
            assert code == 0, err
            assert "already staged (10.0 KiB, md5 " in err, err
            assert "2 members already staged" in err, err
        assert (dest / "ds" / "a.txt").read_bytes() == b"alpha"
    finally:
        back.stop()


def test_a_repair_after_a_remount_writes_only_the_member_that_is_missing(
        local_state, tmp_path, working_drive_mount):
    """One member deleted in a new session (the mount shows Drive's milliseconds): the
    repair wrote all five members again, through the mount, taking the others' coarser
    times for changes; it writes the one."""
    mount = working_drive_mount
    src, dest = tmp_path / "set.tar", mount.point / "MyDrive" / "data"
    members = {f"ds/{i}.txt": b"x" * i for i in range(1, 6)}
    src.write_bytes(_tar(members, 1_764_900_000.6234567))
    code, _, err = run("pull", str(src), str(dest), "-x")
    assert code == 0, err
    mount.flush()
    mount.disconnect()
    back = mount.remount()
    try:
        (dest / "ds" / "3.txt").unlink()
        code, _, err = run("pull", str(src), str(dest), "-x")
        assert code == 0, err
        assert "1 member extracted, 4 already staged" in err, err   # was: 5 members extracted
        assert {f"ds/{p.name}": p.read_bytes() for p in (dest / "ds").iterdir()} == members
        code, _, err = run("pull", str(src), str(dest), "-x")
        assert code == 0 and "5 members already staged" in err, err
    finally:
        back.stop()


def test_a_coarser_time_counts_where_the_stamp_is_shown_at_it_too():
    from drivestage.mtimes import same_mtime

    stamped = 1_764_900_000_623_456_789
    second, ms = stamped // SECOND * SECOND, stamped // 10**6 * 10**6
    assert same_mtime(second, stamped) and same_mtime(ms, stamped)       # shown unknown
    assert same_mtime(second, stamped, shown=1_764_900_001 * SECOND)     # a mount at seconds
    assert same_mtime(ms, stamped, shown=1_764_900_001_417_000_000)      # at milliseconds
    assert not same_mtime(second, stamped, shown=1_764_900_001_417_000_000)  # a real second
    assert not same_mtime(ms, stamped, shown=1_764_900_001_417_123_456)  # shown in ns
    assert same_mtime(stamped, stamped, shown=1_764_900_001_417_123_456)  # exact: always
