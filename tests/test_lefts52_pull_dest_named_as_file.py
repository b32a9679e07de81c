"""lefts52: ``drivestage pull drive:runs/exp/best.pt ./weights/best.pt``, DEST typed as
``cp``'s (a file's name). As documented (a file lands in DEST/<name>, as rclone's ``copy``),
pull makes the folder ``weights/best.pt/`` holding ``best.pt``; a script that then loads
``weights/best.pt`` failed far from the cause. Where the pull made DEST and its last name
is the file's, one warning says where the file is and how to have it at DEST; exit 0 as
before. A DEST that was there, or is written as a folder, gets no word."""
from __future__ import annotations

import os

import pytest

from _cli import run, warning_lines
from _messages import renders, shown

DATA = b"weights " * 1000


def _line(src: str, at: str) -> str:
    return ("WARNING drivestage.cli.pull: DEST weights/best.pt was not there: pull made it a "
            f"folder and put the file in it, at {at} (a file lands in DEST/<name>); to have the "
            "file at weights/best.pt itself, give the folder above it as DEST: rm -r "
            f"weights/best.pt && drivestage pull {src} weights")


@renders("DEST … was not there: pull made it a folder and put the file in it")
def test_a_drive_file_pulled_to_a_dest_named_as_it_is_said(emulator, drive_env, local_state,
                                                           tmp_path, monkeypatch):
    """On main a02cab15 nothing was said (no WARNING line), exit 0."""
    emulator.add_file("runs/exp/best.pt", DATA)
    monkeypatch.chdir(tmp_path)
    code, out, err = run("pull", "drive:runs/exp/best.pt", "./weights/best.pt", "-q")
    at = str(tmp_path / "weights" / "best.pt" / "best.pt")
    assert code == 0, err
    assert out == at + "\n"
    assert (tmp_path / "weights" / "best.pt" / "best.pt").read_bytes() == DATA
    assert warning_lines(err, "DEST") == [_line("drive:runs/exp/best.pt", at)]
    shown("DEST … was not there: pull made it a folder and put the file in it", err)


@pytest.mark.parametrize("dest", ["weights/best.pt/", "weights/other.pt", "weights"])
def test_a_dest_written_as_a_folder_or_named_otherwise_gets_no_word(dest, local_state,
                                                                   tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "best.pt").write_bytes(DATA)
    monkeypatch.chdir(tmp_path)
    code, out, err = run("pull", "runs/best.pt", dest)
    assert code == 0, err
    assert (tmp_path / dest / "best.pt").read_bytes() == DATA
    assert warning_lines(err, "DEST") == [], err


def test_a_dest_that_was_there_gets_no_word_and_the_advice_works(local_state, tmp_path,
                                                                monkeypatch):
    """The advice, followed, puts the file at DEST; a folder the user made is DEST as
    documented (a rerun, or ``mkdir weights/best.pt`` first), no word."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "best.pt").write_bytes(DATA)
    monkeypatch.chdir(tmp_path)
    code, _, err = run("pull", "runs/best.pt", "weights/best.pt", "-q")
    at = str(tmp_path / "weights" / "best.pt" / "best.pt")
    assert code == 0 and warning_lines(err, "DEST") == [_line("runs/best.pt", at)], err
    code, _, err = run("pull", "runs/best.pt", "weights/best.pt")          # a rerun
    assert code == 0 and warning_lines(err, "DEST") == [], err
    advice = _line("runs/best.pt", at).rsplit(": ", 1)[1]
    assert advice == "rm -r weights/best.pt && drivestage pull runs/best.pt weights"
    import shutil

    shutil.rmtree(tmp_path / "weights" / "best.pt")
    code, out, err = run("pull", "runs/best.pt", "weights", "-q")
    assert code == 0 and warning_lines(err, "DEST") == [], err
    assert os.path.isfile(tmp_path / "weights" / "best.pt")
    assert (tmp_path / "weights" / "best.pt").read_bytes() == DATA
