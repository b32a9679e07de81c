"""docs/troubleshooting.md, "Checksums": each message made to happen (see tests/_messages.py).

The commands run in this process against the emulator. What happens "meanwhile" (the file
replaced on Drive during a pull, a writer appending to a file during a push) is done by a
proxy in front of the emulator (tests/_proxy.py) at a request's answer, so it happens at the
same moment on every run.
"""
from __future__ import annotations

import hashlib
import os

import pytest
from click.testing import CliRunner

from _messages import error_line as error
from _messages import renders, shown
from _proxy import Proxy, Reply
from drivestage.cli import cli

KiB = 1024


def pull(*args: str) -> tuple[int, str]:
    """``drivestage pull ARGS`` in this process: its exit code and its stderr."""
    result = CliRunner().invoke(cli, ["pull", *args])
    return result.exit_code, result.stderr


def push(*args: str) -> tuple[int, str]:
    """``drivestage push ARGS`` in this process: its exit code and its stderr."""
    result = CliRunner().invoke(cli, ["push", *args], catch_exceptions=False)
    return result.exit_code, result.stderr


@pytest.fixture
def proxy(emulator, local_state, drive_env, monkeypatch):
    """A proxy in front of the emulator, which the commands talk to."""
    with Proxy(emulator.url) as p:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", p.url)
        yield p


def appended_to(path) -> "callable":
    """A proxy mutation: a writer appends to ``path`` each time the answer passes by."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        with open(path, "ab") as fh:
            fh.write(b"more")
        return Reply(status, headers, [body])
    return mutate


def live(emu, folder: str) -> dict[str, str]:
    """name -> md5 of the live files directly in ``folder`` on the emulator."""
    top = emu.find(folder)
    return {f["title"]: f["md5Checksum"] for f in emu.files() if not f["labels"]["trashed"]
            and any(p["id"] == top["id"] for p in f.get("parents") or [])}


# --------------------------------------------------------------------------- downloads

@renders("the downloaded bytes do not match Drive")
def test_bytes_that_differ_from_drives_md5(emulator, local_state, drive_env, tmp_path):
    fid = emulator.add_file("VOC/set.zip", os.urandom(5000))
    emulator.faults.corrupt(fid)
    code, err = pull("drive:VOC/set.zip", str(tmp_path / "d"))
    assert code == 1
    shown("the downloaded bytes do not match Drive", err.splitlines()[-1])


@renders("changed on Drive while downloading")
@pytest.mark.parametrize("extra", [1000, 0], ids=["larger", "same-size"])
def test_the_file_is_replaced_on_drive_during_a_pull(emulator, proxy, store, tmp_path, extra):
    # Same size: a checkpoint of the same model is that size in every epoch.
    old, new = os.urandom(1024 * KiB), os.urandom(1024 * KiB + extra)
    fid = emulator.add_file("VOC/set.zip", old)
    newer = tmp_path / "newer.zip"
    newer.write_bytes(new)

    def someone_replaces_it(status: int, headers: dict, body: bytes) -> Reply:
        # Another machine uploads a new version while the first piece is on its way.
        entry = store.resolve("VOC/set.zip")
        store.upload(str(newer), store.resolve("VOC"), "set.zip", replace=entry)
        return Reply(status, headers, [body])

    proxy.on("GET", r"alt=media", someone_replaces_it, times=1)
    dest = tmp_path / "d"
    code, err = pull("drive:VOC/set.zip", str(dest), "-j", "1", "--chunk-size", "256KiB")
    assert code == 1
    line = error(err)
    if extra:  # told by the next answer's Content-Range
        assert "(size 1048576 became 1049576); run again" in line
    else:      # told by the checksum, then Drive's metadata: one download, not a second one
        assert f"(md5 {hashlib.md5(old).hexdigest()} became {hashlib.md5(new).hexdigest()}); " \
               "run again" in line, line
        assert proxy.count("GET", r"alt=media") == 4
    shown("changed on Drive while downloading", line)
    assert emulator.find("VOC/set.zip")["id"] == fid
    assert not (dest / "set.zip").exists()  # nothing unverified under the final name
    code, err = pull("drive:VOC/set.zip", str(dest), "-q")  # run again: the new version
    assert code == 0, err
    assert (dest / "set.zip").read_bytes() == new


# --------------------------------------------------------------------------- uploads

@renders("does not match the local file … after two uploads")
def test_drive_stores_other_bytes_twice(emulator, local_state, drive_env, tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(os.urandom(3000))
    emulator.faults.corrupt_upload(times=2)
    code, err = push(str(src), "drive:Models/run")
    assert code == 1
    line = error(err)
    assert "the remote copy was deleted. Check the network path to Drive" in line
    shown("does not match the local file … after two uploads", line)
    assert live(emulator, "Models/run") == {}  # no bad copy left under the name


@renders("Drive kept the old version of … after two updates")
def test_an_update_drive_answers_but_never_applies(emulator, proxy, tmp_path):
    """Every in-place update of results.csv is answered 200 with the file as it was, and
    Drive holds its old bytes still: it is left as it is (not deleted), exit 1."""
    import urllib.request

    src = tmp_path / "logs"
    src.mkdir()
    csv = src / "results.csv"
    csv.write_bytes(b"epoch,loss\n1,0.5\n")
    code, err = push(str(src), "drive:Models/run")
    assert code == 0, err
    before = live(emulator, "Models/run")
    fid = emulator.find("Models/run/results.csv")["id"]

    def as_it_was(status: int, headers: dict, body: bytes) -> Reply:
        ask = urllib.request.Request(f"{emulator.url}drive/v2/files/{fid}",
                                     headers={"Authorization": "Bearer test-token"})
        with urllib.request.urlopen(ask) as answer:
            return Reply(200, {"Content-Type": "application/json"}, [answer.read()])
    proxy.on("PUT", rf"^/upload/drive/v2/files/{fid}\?.*upload_id=", as_it_was,
             forward=False)
    csv.write_bytes(b"epoch,loss\n1,0.5\n2,0.4\n")
    code, err = push(str(src), "drive:Models/run")
    assert code == 1
    line = error(err)
    assert "it was left as it was" in line, line
    shown("Drive kept the old version of … after two updates", line)
    assert live(emulator, "Models/run") == before


@renders("kept changing while it was uploaded")
def test_a_checkpoint_written_while_it_is_pushed(emulator, proxy, tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(os.urandom(600 * KiB))
    proxy.on("PUT", r"upload_id=", appended_to(src / "epoch_001.pt"))
    code, err = push(str(src), "drive:Models/run", "--chunk-size", "256KiB")
    assert code == 1
    line = error(err)
    assert "epoch_001.pt kept changing while it was uploaded (3 tries); the half-written " \
           "remote copy was removed" in line
    shown("kept changing while it was uploaded", line)
    assert live(emulator, "Models/run") == {}


@renders("holds a copy taken while it changed", "kept changing while it was uploaded")
def test_a_log_updated_in_place_while_it_is_pushed(emulator, proxy, tmp_path, monkeypatch):
    # A log too large to be sent from a copy (drivestage.snapshots: 64 MiB; 512 KiB here).
    monkeypatch.setattr("drivestage.snapshots.MAX_BYTES", 512 * KiB)
    src = tmp_path / "logs"
    src.mkdir()
    csv = src / "results.csv"
    csv.write_bytes(b"epoch,loss\n1,0.5\n")
    code, err = push(str(src), "drive:Models/run")
    assert code == 0, err
    csv.write_bytes(os.urandom(600 * KiB))  # a big log, still being written
    proxy.on("PUT", r"upload_id=", appended_to(csv))
    code, err = push(str(src), "drive:Models/run", "--chunk-size", "256KiB")
    assert code == 1
    line = error(err)
    assert "results.csv on Drive holds a copy taken while it changed; the next push sends it " \
           "again" in line
    shown("kept changing while it was uploaded", line)
    shown("holds a copy taken while it changed", line)
    assert list(live(emulator, "Models/run")) == ["results.csv"]  # updated in place, one file
    proxy.rules.clear()  # the writer is done: the next push sends it again
    code, err = push(str(src), "drive:Models/run")
    assert code == 0, err
    assert live(emulator, "Models/run") == {"results.csv": hashlib.md5(csv.read_bytes()).hexdigest()}


@renders("is not a checksum drivestage knows")
def test_an_unknown_checksum_preference_is_a_usage_error(emulator, drive_env, tmp_path,
                                                          monkeypatch):
    emulator.add_file("x.bin", b"x")
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "crc32c")
    code, err = pull("drive:x.bin", str(tmp_path / "d"), "-q")
    assert code == 2
    assert err == ("Error: DRIVESTAGE_CHECKSUM='crc32c' is not a checksum drivestage knows: "
                   "use md5, sha256 or auto (the faster one on this machine)\n")
    shown("is not a checksum drivestage knows", err)
    assert not (tmp_path / "d").exists()
    assert emulator.requests == []  # nothing was asked
