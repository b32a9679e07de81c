"""The merge journal of ``pull -x`` (``DEST/.drivestage/<key>.merging``) read while another
pull finishes (attackclob32).

A pull writes its stamp, then removes its journal; ``stamps.recorded`` read the stamps, then
the journals. A second pull into the same DEST asking in between found neither: the first
pull's members counted as the user's own files, and the second pull was refused ("would
replace 1 file … that is not from an extraction"), exit 1, though an extraction wrote it.
"""
from __future__ import annotations

import gzip
import io
import os
import tarfile

import _cli
from _archives import a_fixed_zip, tree

A = {"ds/a.txt": b"from a\n", "ds/only_a.txt": b"a\n"}
B = {"ds/a.txt": b"from b, longer\n"}


def _stamp_of(dest, name: str) -> str:
    (entry,) = [n for n in os.listdir(dest / ".drivestage") if n.startswith(name + "@")]
    return str(dest / ".drivestage" / entry)


def test_a_pull_finishing_while_another_asks_what_is_recorded_is_not_taken_for_the_user(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch):
    """Pull a.zip is between its merge and its stamp (its journal names its members) when
    pull b.zip, sharing ``ds/a.txt``, asks what the stamps record; a.zip's stamp is written
    and its journal removed just as b.zip reads DEST's journals. b.zip replaces a.zip's
    member, exit 0, as an overlay does."""
    import drivestage.stamps as stamps
    from drivestage.extract.occupied import merged, note_merging

    emulator.add_file("F/a.zip", a_fixed_zip(A))
    emulator.add_file("F/b.zip", a_fixed_zip(B))
    dest = tmp_path / "data"
    _cli.ok("pull", "drive:F/a.zip", str(dest), "-x")
    # a.zip as it is just after its merge: members in DEST, its journal, no stamp yet.
    stamp_path = _stamp_of(dest, "a.zip")
    with open(stamp_path, "rb") as fh:
        stamp = fh.read()
    os.unlink(stamp_path)
    note_merging(str(dest), str(dest / "a.zip"), sorted(A))

    real = stamps.merging
    finished = []

    def a_finishes_then_read(state_fd: int) -> list[str]:
        if not finished:   # a.zip's last two steps: its stamp, then its journal removed
            with open(stamp_path, "wb") as fh:
                fh.write(stamp)
            merged(str(dest), str(dest / "a.zip"))
            finished.append(True)
        return real(state_fd)

    monkeypatch.setattr(stamps, "merging", a_finishes_then_read)
    code, out, err = _cli.run("pull", "drive:F/b.zip", str(dest), "-x")

    assert finished
    assert code == 0, err
    files = {k: v for k, v in tree(dest).items() if not k.endswith(".zip")}
    assert files == {"ds/a.txt": B["ds/a.txt"], "ds/only_a.txt": A["ds/only_a.txt"]}
    assert [n for n in os.listdir(dest / ".drivestage") if n.endswith(".merging")] == []


def _tgz_with_modes(members: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, (data, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1_600_000_000
            tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


SCRIPT = b"#!/bin/sh\necho ready\n"


def test_a_users_copy_of_an_executable_member_is_adopted_executable(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    """A file of the user's with a member's very bytes is adopted as the member (kept, same
    inode and mtime); one of a member that is executable (mode 0755) but not itself (the
    user's ``cp`` or editor made it 0644) stayed 0644 while the pull said it was staged:
    ``./run.sh`` was "Permission denied" where a fresh pull's is run. It now gets the
    member's execute bits, as the extraction gives them."""
    emulator.add_file("F/a.tgz", _tgz_with_modes({"bin/run.sh": (SCRIPT, 0o755),
                                                  "bin/notes.txt": (b"n\n", 0o644)}))
    fresh = tmp_path / "fresh"
    _cli.ok("pull", "drive:F/a.tgz", str(fresh), "-x")
    want = os.stat(fresh / "bin/run.sh").st_mode & 0o111
    assert want
    dest = tmp_path / "data"
    (dest / "bin").mkdir(parents=True)
    for name, data in (("run.sh", SCRIPT), ("notes.txt", b"n\n")):
        (dest / "bin" / name).write_bytes(data)
        os.chmod(dest / "bin" / name, 0o640)
    before = {n: os.stat(dest / "bin" / n) for n in ("run.sh", "notes.txt")}

    _cli.ok("pull", "drive:F/a.tgz", str(dest), "-x")

    for name, st in before.items():
        now = os.stat(dest / "bin" / name)
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert os.stat(dest / "bin/run.sh").st_mode & 0o777 == 0o640 | want
    assert os.stat(dest / "bin/notes.txt").st_mode & 0o777 == 0o640
    assert (dest / "bin/run.sh").read_bytes() == SCRIPT
