"""docs/troubleshooting.md, "Local disk space": each message made to happen (see
tests/_messages.py).

``pull`` runs in this process against the emulator. A disk that fills up is a real one: a
small tmpfs (tests/_tmpfs.py; the tests that need one are skipped where it cannot be mounted).
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import zipfile

from click.testing import CliRunner

from _envs import env_local_retries  # noqa: F401  (the env fixture)
from _messages import error_line as error
from _messages import log_text, renders, shown
from _proxy import Proxy, Reply
from _drivemount import working_drive_mount  # noqa: F401 (a fixture)
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from drivestage.cli import cli

KiB = 1024


def pull(*args: str) -> tuple[int, str]:
    """``drivestage pull ARGS`` in this process: its exit code and its stderr."""
    result = CliRunner().invoke(cli, ["pull", *args], catch_exceptions=False)
    return result.exit_code, result.stderr


def media(emu) -> list:
    return [r for r in emu.requests if r.query.get("alt") == "media"]


def fill(folder) -> None:
    """Another program writes into ``folder`` until its file system is full."""
    with open(os.path.join(folder, "filler.bin"), "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * (16 * KiB))
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC


@renders("not enough free disk space in … to …")
def test_the_file_does_not_fit_before_downloading(emulator, env, tmp_path):
    emulator.add_file("big.bin", os.urandom(1000))
    emulator.clear_requests()
    code, err = pull("drive:big.bin", str(tmp_path / "d"), "--reserve", "100000T")
    assert code == 1
    line = error(err)
    assert "to download drive:big.bin: needs 1000 B (1000 bytes), only 0 B (0 bytes) free " \
           "(keeping 100000.0 TiB in reserve); free some space, lower --reserve or pull " \
           "elsewhere" in line   # (the reserve the user set is one way out: ux34)
    shown("not enough free disk space in … to …", line)
    assert media(emulator) == []


@renders("not enough free disk space to extract")
def test_the_members_do_not_fit(emulator, env, small_disk):
    disk = small_disk(1024 * KiB)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("VOC/zeros.bin", b"\0" * (4096 * KiB))  # a few KiB compressed
    emulator.add_file("set.zip", buf.getvalue())
    code, err = pull("drive:set.zip", str(disk / "data"), "-x")
    assert code == 1
    line = error(err)
    assert "needs 4.0 MiB (4194304 bytes), only" in line and "or extract elsewhere" in line
    assert f"to extract set.zip into {disk / 'data'}: needs" in line
    shown("not enough free disk space to extract", line)
    assert not (disk / "data" / "VOC").exists()


def test_a_streamed_tar_member_that_does_not_fit(emulator, env, small_disk):
    """The same entry for a tar.gz, which is extracted as it downloads: the member that does
    not fit stops that extraction, and the verified archive's own check says why, naming the
    archive (not the partial file it was read from)."""
    from _archives import a_tgz

    disk = small_disk(1024 * KiB)
    emulator.add_file("set.tar.gz", a_tgz({"VOC/zeros.bin": b"\0" * (4096 * KiB)}))
    code, err = pull("drive:set.tar.gz", str(disk / "data"), "-x")
    assert code == 1
    line = error(err)
    assert f"to extract set.tar.gz into {disk / 'data'}: needs 4.0 MiB (4194304 bytes), " \
           "only " in line and "or extract elsewhere" in line and ".partial" not in line
    shown("not enough free disk space to extract", line)
    assert not (disk / "data" / "VOC").exists()


@renders("the disk filled up while staging")
def test_the_disk_fills_up_during_the_download(emulator, env, small_disk, monkeypatch):
    disk = small_disk(1024 * KiB)
    data = os.urandom(256 * KiB)
    emulator.add_file("set.bin", data)

    def another_program_fills_the_disk(status: int, headers: dict, body: bytes) -> Reply:
        fill(disk)  # after the space check, before the bytes arrive
        return Reply(status, headers, [body])

    with Proxy(emulator.url) as proxy:
        proxy.on("GET", r"alt=media", another_program_fills_the_disk, times=1)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        code, err = pull("drive:set.bin", str(disk / "d"), "-j", "1")
    assert code == 1
    line = error(err)
    assert f"while staging drive:set.bin into {disk / 'd'}" in line
    assert "free some space and run again: the download resumes where it stopped" in line
    assert f"({disk / 'd'})" not in line  # DEST is named once
    shown("the disk filled up while staging", line)
    assert not (disk / "d" / "set.bin").exists()
    os.remove(disk / "filler.bin")  # the remedy: free space, run the same command
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    code, err = pull("drive:set.bin", str(disk / "d"), "-q")
    assert code == 0, err
    assert hashlib.md5((disk / "d" / "set.bin").read_bytes()).digest() == hashlib.md5(data).digest()


@renders("cannot stage … into …:")
def test_a_file_where_dest_needs_a_folder(emulator, env, tmp_path):
    emulator.add_file("x.bin", b"x")
    (tmp_path / "data").write_bytes(b"a file, not a folder")
    dest = tmp_path / "data" / "sub"
    code, err = pull("drive:x.bin", str(dest))
    assert code == 1
    line = error(err)
    # DEST once, and which part of it is the file (ux34: "Not a directory" named none)
    assert line == (f"Error: cannot stage drive:x.bin into {dest}: {tmp_path / 'data'} is a "
                    "file, not a folder; choose a folder that is not inside a file")
    shown("cannot stage … into …:", line)
    assert (tmp_path / "data").read_bytes() == b"a file, not a folder"


@renders("is inside the Google Drive mount")
def test_pulling_into_colabs_drive_mount(emulator, env, working_drive_mount, caplog):
    import drivestage

    mount = working_drive_mount.point   # a FUSE mount (a plain folder there is not: mount31)
    emulator.add_file("set.bin", b"data")
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        drivestage.pull("drive:set.bin", str(mount / "MyDrive" / "data"), quiet=True)
    text = log_text(caplog.records)
    assert len(caplog.records) == 1
    assert f"DEST {mount / 'MyDrive' / 'data'} is inside the Google Drive mount {mount}: " \
           "staging there sends every byte back to Drive" in text
    shown("is inside the Google Drive mount", text)
