"""lefts45: ``trainer status`` (into a temporary folder in TMPDIR) and ``--resume auto``
(into ``train.out_dir``) fetched a checkpoint from Drive whole with no look at the room for
it: a lone checkpoint of gigabytes filled the disk, then failed with ENOSPC (status: "could
not be fetched to look inside ([Errno 28] …)" after the bytes were sent; the resume a
traceback-free but mid-download failure). Now the room is asked first, as ``drivestage pull``
asks it (:func:`drivestage.sizes.check_space`), and one line says what is needed and where;
nothing is downloaded. A small tmpfs that really fills up; the real PyDrive2 stack."""
from __future__ import annotations

import re
import tempfile
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from _lease_pairs import save_pair
from _tiny_run import tiny_run_config
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from drivestage.errors import DiskSpaceError


def _media(emulator, since: int, file_id: str) -> list:
    return [r for r in emulator.requests[since:] if r.query.get("alt") == "media"
            and r.path.rsplit("/", 1)[-1] == file_id]


def test_a_lone_checkpoint_larger_than_the_disk_is_not_fetched_and_the_room_is_said(
        emulator, drive_env, local_state, tmp_path, small_disk, monkeypatch):
    from trainer.drive import DriveFolder
    from trainer.resume import _decide

    save_pair(tmp_path / "made", "epoch_002.pt", 2.0, values=64 * 1024)   # 256 KiB of floats
    data = (tmp_path / "made" / "epoch_002.pt").read_bytes()
    lone = emulator.add_file("runs/a/epoch_002.pt", data)
    size = len(data)
    temp = small_disk(64 * 1024)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    since = len(emulator.requests)
    got = CliRunner().invoke(__import__("trainer.cli", fromlist=["cli"]).cli,
                             ["status", "-c", tiny_run_config(tmp_path)])
    assert got.exit_code == 1, got.output
    line = got.output.splitlines()[-1]
    assert re.fullmatch(
        r"Error: no verified checkpoint on drive:runs/a yet; drive:runs/a/epoch_002\.pt is "
        r"there without its sidecar \(a save killed between its two uploads\?\); whether "
        r"--resume auto goes on from it is not known: it could not be fetched to look inside "
        rf"\(not enough free disk space in {re.escape(str(temp))} to fetch "
        rf"drive:runs/a/epoch_002\.pt: needs 2\d\d\.\d KiB \({size} bytes\), only \d+\.\d KiB "
        r"\(\d+ bytes\) free; free some space there, or set TMPDIR to a folder on a disk with "
        r"room\)", line), line
    assert _media(emulator, since, lone) == [] and list(temp.iterdir()) == []

    # The resume, into a run folder on that disk: refused before the download, one line.
    out_dir = temp / "logs"
    since = len(emulator.requests)
    with pytest.raises(DiskSpaceError) as refused:
        _decide(SimpleNamespace(train=SimpleNamespace(out_dir=str(out_dir))), "auto",
                DriveFolder("drive:runs/a", str(out_dir)))
    assert re.fullmatch(
        rf"not enough free disk space in {re.escape(str(out_dir))} to fetch "
        rf"drive:runs/a/epoch_002\.pt: needs 2\d\d\.\d KiB \({size} bytes\), only \d+\.\d KiB "
        r"\(\d+ bytes\) free; free some space and run the same command \(Drive keeps it\)",
        str(refused.value)), refused.value
    assert _media(emulator, since, lone) == [] and list(out_dir.iterdir()) == []
