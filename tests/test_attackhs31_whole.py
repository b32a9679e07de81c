"""A file that changes size on Drive while a server that ignores ``Range`` serves it
(attackhs31).

Behind a proxy that strips ``Range`` (the emulator's ``faults.ignore_range``) every read is
answered 200 with the whole file. When the file got a new version of another size between
two reads, the next whole answer announced the new size: a larger one ended "the answer ...
is longer than that ... Something between here and Drive is broken (a proxy?)", a smaller
one was retried 8 times as a "short body" and ended "still failing after 8 attempts". The
206 path already says "changed on Drive while downloading (size A became B); run again",
from the total its Content-Range announces; a whole answer's length is that total too.
In-process CLI against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import os

import pytest

import _cli
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _proxy import Reply

KiB = 1024


def _replaced_then_cut(store, file_id: str, newer, cut: int):
    """Another machine uploads a new version of ``file_id`` while its first answer is on
    its way; that answer then breaks off after ``cut`` bytes (the reader asks for the rest)."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        f = store.drive.CreateFile({"id": file_id})
        f.SetContentFile(str(newer))
        f.Upload(param={"supportsAllDrives": True})

        def broken():
            yield body[:cut]
            raise ConnectionResetError("cut")
        return Reply(status, headers, broken())
    return mutate


@pytest.mark.parametrize("delta", [100 * KiB, -100 * KiB], ids=["larger", "smaller"])
def test_a_whole_answer_of_another_size_is_a_change_on_drive(emulator, proxy, liar_env,
                                                              tmp_path, delta):
    from drivestage.drive import connect

    old, new = os.urandom(1024 * KiB), os.urandom(1024 * KiB + delta)
    fid = emulator.add_file("VOC/set.bin", old)
    newer = tmp_path / "newer.bin"
    newer.write_bytes(new)
    emulator.faults.ignore_range(times=None)
    other = connect(api_root=emulator.url, token="test-token")
    proxy.on("GET", r"alt=media", _replaced_then_cut(other, fid, newer, 300 * KiB), times=1)
    dest = tmp_path / "d"
    code, out, err = _cli.run("pull", "drive:VOC/set.bin", str(dest), "-j", "1")
    line = one_error_line(code, err)
    assert line == (f"Error: drive:VOC/set.bin changed on Drive while downloading (size "
                    f"{len(old)} became {len(new)}); run again"), line
    assert proxy.count("GET", "alt=media") == 2   # not retried as a broken answer
    assert proxy.count("GET", r"fields=fileSize") == 1   # the size Drive lists now, asked once
    assert not (dest / "set.bin").exists()
    code, out, err = _cli.run("pull", "drive:VOC/set.bin", str(dest), "-q")  # run again
    assert code == 0, err
    assert (dest / "set.bin").read_bytes() == new


PORTAL = b"<html><body>Please sign in to the Wi-Fi to continue</body></html>"


@pytest.mark.parametrize("page", [PORTAL, PORTAL * 300], ids=["shorter", "longer"])
def test_a_portal_page_for_the_bytes_is_no_change_on_drive(emulator, proxy, liar_env,
                                                            tmp_path, page):
    """A captive portal answers the download 200 with its page, of another length than the
    file: Drive lists the size it did, so the file did not change; no "changed on Drive; run
    again" (a guard: the answer is taken for a broken one, as before)."""
    emulator.add_file("VOC/set.bin", os.urandom(10 * KiB))
    proxy.on("GET", r"alt=media", lambda s, h, b: Reply(
        200, {"Content-Type": "text/html", "Content-Length": str(len(page))}, [page]))
    dest = tmp_path / "d"
    line = one_error_line(*_cli.run("pull", "drive:VOC/set.bin", str(dest))[::2])
    assert "changed on Drive" not in line, line
    assert "drive:VOC/set.bin" in line, line
    assert not (dest / "set.bin").exists()


def _416_once(total):
    """The second read answered 416 (a range it says it cannot satisfy), with ``total`` as
    its Content-Range's size (None: no Content-Range), though the file is unchanged."""
    seen = []

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        seen.append(1)
        if len(seen) != 2:
            return Reply(status, headers, [body])
        err = (b'{"error": {"code": 416, "message": "Request range not satisfiable", "errors": '
               b'[{"reason": "requestedRangeNotSatisfiable", "message": "Request range not '
               b'satisfiable"}]}}')
        out = {"Content-Type": "application/json", "Content-Length": str(len(err))}
        if total is not None:
            out["Content-Range"] = f"bytes */{total}"
        return Reply(416, out, [err])
    return mutate


@pytest.mark.parametrize("total", [1024 * KiB, None], ids=["same-total", "no-total"])
def test_a_416_for_a_file_drive_still_lists_unchanged_is_no_change(emulator, proxy, liar_env,
                                                                    tmp_path, total):
    """A 416 for bytes inside the file, which Drive still lists at its size: it said
    "changed on Drive while downloading (size 1048576 became 1048576)" (or "it ends before
    byte 262144 now") and stopped. Drive is asked for the size: unchanged, the 416 is a
    broken answer, asked again, and the pull completes."""
    data = os.urandom(1024 * KiB)
    emulator.add_file("VOC/set.bin", data)
    proxy.on("GET", r"alt=media", _416_once(total))
    dest = tmp_path / "d"
    code, out, err = _cli.run("pull", "drive:VOC/set.bin", str(dest), "-j", "1",
                              "--chunk-size", "256KiB")
    assert code == 0, err[-2000:]
    assert (dest / "set.bin").read_bytes() == data
    assert "changed on Drive" not in err


def _total_off_once():
    """The second read's Content-Range names a total one byte more than the file's."""
    seen = []

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        seen.append(1)
        out = dict(headers)
        if len(seen) == 2:
            for k, v in headers.items():
                if k.lower() == "content-range":
                    head, _, total = v.rpartition("/")
                    out[k] = f"{head}/{int(total) + 1}"
        return Reply(status, out, [body])
    return mutate


def test_a_content_range_total_drive_does_not_list_is_a_failed_attempt(emulator, proxy,
                                                                       liar_env, tmp_path):
    """One 206 whose Content-Range total is not the size Drive lists (a broken answer; the
    file is unchanged): it stopped the pull "changed on Drive while downloading (size
    1048576 became 1048577); run again". Now it is asked again and the pull completes."""
    data = os.urandom(1024 * KiB)
    emulator.add_file("VOC/set.bin", data)
    proxy.on("GET", r"alt=media", _total_off_once())
    dest = tmp_path / "d"
    code, out, err = _cli.run("pull", "drive:VOC/set.bin", str(dest), "-j", "1",
                              "--chunk-size", "256KiB")
    assert code == 0, err[-2000:]
    assert (dest / "set.bin").read_bytes() == data
