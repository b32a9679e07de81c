"""attackint46: a 412 is "changed since it was checked" only where drivestage asked for
that (a removal naming its check's etag: ifmatch46).

answers.typed_error typed every 412 as ChangedSinceCheckedError, a NotFoundError: an upload
or a download a server (or a proxy) answered 412 said "it changed on Drive since it was
checked ... kept as it is now", though nothing was checked nor kept, and each of the callers
that take a NotFoundError for "gone" (58 places; by reading, trainer/lease.py's renewal
in place then writes a second claim file) took it for that. drivestage sends If-Match on removals only, so a 412
to anything else is a server's answer to a request that named no condition: said as it
is, HTTP 412, not typed as an item gone."""
from __future__ import annotations

from _cli import run

KEPT = "kept as it is now"


def test_an_upload_answered_412_is_no_item_changed_since_checked(emulator, drive_env, tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    (src / "a.bin").write_bytes(b"y" * 1000)
    emulator.faults.inject("POST", r"^/upload/", status=412, reason="conditionNotMet",
                           times=None)
    code, _, err = run("push", str(src), "drive:runs/x")
    assert code == 1, err
    line = [s for s in err.splitlines() if "a.bin" in s and "412" in s]
    assert len(line) == 1 and KEPT not in line[0] and "checked" not in line[0], err


def test_a_download_answered_412_is_no_item_changed_since_checked(emulator, drive_env, tmp_path):
    emulator.add_file("data/a.bin", b"x" * 1000)
    emulator.faults.inject("GET", r"alt=media", status=412, reason="conditionNotMet",
                           times=None)
    code, _, err = run("pull", "drive:data", str(tmp_path / "d"))
    assert code == 1, err
    line = [s for s in err.splitlines() if "a.bin" in s and "412" in s]
    assert len(line) == 1 and KEPT not in line[0] and "checked" not in line[0], err
    assert not (tmp_path / "d" / "a.bin").exists()
