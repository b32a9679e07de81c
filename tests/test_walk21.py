"""walk21: a new user on Kaggle or a spot VM (a small working disk, a slow link, SIGTERM as
the notice) follows the README and docs on the emulator. Each test is a defect that walk
found, driven through the real stack over HTTP."""
from __future__ import annotations

import os
import threading

import pytest

from _messages import error_line

from _tmpfs import small_disk  # noqa: F401 (a fixture)
from test_messages_walk20 import _drivestage, _media_gets
from test_writer import _job, _remote, _until, _uploads_started
from trainer.drive import DriveFolder
from trainer.writer import BackgroundWriter

FOLDER = "Models/w/logs"


@pytest.fixture
def folder(emulator, drive_env, local_state, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    return DriveFolder(f"drive:{FOLDER}", str(out))


# ------------------------------------- a stop while an epoch save waits behind a slow upload

def test_a_stop_while_an_epoch_save_waits_for_the_slot_writes_both_at_once(emulator, folder):
    """On a slow link the writer uploads an autosave; epoch 1's save waits in the slot; the end
    of epoch 2 then waited in ``submit`` for that slot with no bound, so a SIGTERM (Kaggle, a
    spot VM) was not honoured: the walk's run ignored it for minutes, was SIGKILLed, and its
    run folder held only iteration 1's autosave (two trained epochs lost, locally too). A stop
    now ends the wait: both epoch saves are written at once in the calling thread, before the
    upload under way is answered."""
    emulator.faults.latency(30.0, path=r"^/upload/")          # an upload that takes "for ever"
    writer = BackgroundWriter(folder.local_dir, folder)
    writer.submit(_job(1))                                     # the autosave being uploaded
    _until(lambda: _uploads_started(emulator), "the first push never started")
    first = _job(2, droppable=False, name="epoch_001.pt")
    writer.submit(first)                                       # waits in the slot
    stop = threading.Event()
    second = _job(3, droppable=False, name="epoch_002.pt")
    t = threading.Thread(target=writer.submit, args=(second,), kwargs={"stopping": stop.is_set})
    t.start()
    stop.set()                                                 # the SIGTERM
    t.join(timeout=10)
    assert not t.is_alive(), "submit kept waiting for the slot after the stop"
    # (trainer22: the slot is held by a local write only, never by an upload: both are
    # written by the writing thread while the upload is still held.)
    _until(lambda: first.written and second.written, "an epoch save waited for the upload")
    assert {"epoch_001.pt", "epoch_002.pt"} <= set(os.listdir(folder.local_dir))
    assert "autosave_00000001.pt" not in _remote(emulator)     # the upload is still under way
    assert writer.close(lambda: 0.0) is False                  # the deadline has passed
    emulator.faults.clear()
    emulator.faults.release_holds()                            # the upload is answered now
    assert writer.close() is True
    assert {"epoch_001.pt", "epoch_002.pt"} <= set(_remote(emulator))


# ----------------------------------- a folder of many small files on a small working disk

def test_a_folder_pull_counts_the_disk_its_small_files_take_before_a_byte(
        emulator, drive_env, local_state, small_disk):
    """Kaggle's /kaggle/working has a quota; a dataset kept as a folder is many small files.
    Each takes at least one 4 KiB block, and so does its stamp in .drivestage/: the walk's
    600 KiB folder (607 files) took 4.8 MiB of a tmpfs. The check before the first byte
    counted 600 KiB, passed on a 3 MiB disk, and the pull died half-way with "the disk filled
    up". It now counts the blocks and refuses before a byte is downloaded."""
    for i in range(40):
        emulator.add_file(f"Datasets/small/img/{i:03d}.xml", os.urandom(1000))
    disk = small_disk(200 * 1024, inodes=1000)                 # 40 KB of data, 320 KiB on disk
    r = _drivestage("pull", "drive:Datasets/small", str(disk / "data"))
    assert r.exit_code == 1, r.output
    assert error_line(r.stderr) == (
        f"Error: not enough free disk space in {disk / 'data' / 'small'} to download "
        "drive:Datasets/small: needs 320.0 KiB (327680 bytes) on disk for 40 files of "
        "39.1 KiB (each file and its stamp take whole 4.0 KiB blocks), only 200.0 KiB "
        "(204800 bytes) free; free some space or pull elsewhere")
    assert _media_gets(emulator) == []


def test_every_option_of_every_command_says_what_it_does():
    """`trainer predict --batch-size` and `trainer synth-data --seed` (and export-onnx's
    `--opset`) showed a bare `[default: 8; x>=1]` in --help."""
    import click

    from drivestage.cli import cli as drivestage_cli
    from trainer.cli import cli as trainer_cli

    bare = []

    def walk(command: click.Command, name: str) -> None:
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                walk(sub, f"{name} {sub_name}")
        bare.extend(f"{name} {p.opts[0]}" for p in command.params
                    if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip())

    walk(drivestage_cli, "drivestage")
    walk(trainer_cli, "trainer")
    assert bare == []


# ------------------------------------------------------- the grace's end is said once

def test_a_stop_during_the_final_upload_says_the_grace_ran_out_once(emulator, drive_env,
                                                                      local_state, tiny_config,
                                                                      caplog):
    """The walk's SIGTERM during the final uploads ended with the same ERROR line twice
    (`the Drive mirror could not finish within train.grace_seconds; ...`): on_fit_end said it,
    and the engine's on_interrupt, closing the writer again, said it once more."""
    import logging
    import signal

    from test_messages_train import _drive_config, _run, _save, _state
    from trainer.errors import TrainingInterrupted

    run = _run(_drive_config(tiny_config), drive=True, grace_s=0.2)
    _save(run.out_dir, "epoch_002.pt", _state(run.state.run, 2, 4))
    emulator.faults.latency(1.0, path=r"^/upload/", times=1)  # Drive slower than the grace
    run.stop.request(signal.SIGTERM)
    try:
        with caplog.at_level(logging.ERROR, logger="trainer"):
            with pytest.raises(TrainingInterrupted) as stopped:
                run.checkpointer.on_fit_end(run)
            run.checkpointer.on_interrupt(run, stopped.value)   # as the engine calls it
    finally:
        assert run.writer.close() is True
    said = [r.getMessage() for r in caplog.records
            if "could not finish within train.grace_seconds" in r.getMessage()]
    assert len(said) == 1, said


# --------------------------------------------------------------- a config with a YAML typo

def test_a_config_that_is_not_yaml_is_one_error_line(tmp_path):
    """`trainer train -c bad.yaml` (an unclosed `[`) printed PyYAML's four lines, the last two
    without the `Error:` line the exit code table promises."""
    from click.testing import CliRunner

    from trainer.cli import cli

    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  classes: [a, b\nmodel:\n  input_size: 64\n")
    r = CliRunner().invoke(cli, ["train", "-c", str(bad)])
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines == [
        f"Error: config {bad} is not valid YAML: line 3, column 6: expected ',' or ']', but got "
        "':' (while parsing a flow sequence that starts at line 2, column 12); fix the file "
        "there"], r.stderr


# ------------------------------------------------------- the emulator's --data-dir refused

def test_an_emulator_data_dir_that_cannot_be_made_names_data_dir_not_the_port(tmp_path):
    """`drivestage emulator --data-dir /kaggle/input/x` (read-only) said `cannot listen on
    127.0.0.1:0: Read-only file system. Choose another --port`: the port was never the
    problem."""
    from click.testing import CliRunner

    from drivestage.cli import cli as drivestage_cli

    (tmp_path / "afile").write_text("x")
    where = tmp_path / "afile" / "drive"
    r = CliRunner().invoke(drivestage_cli, ["emulator", "--port", "0", "--data-dir", str(where)])
    assert r.exit_code == 2, r.output
    assert error_line(r.stderr) == (
        f"Error: cannot use --data-dir {where}: not a directory ({where}); give a folder "
        "this user can write")


@pytest.mark.parametrize("command", ["push", "mirror"])
def test_push_jobs_0_names_the_option_typed(command, tmp_path):
    """`push --jobs 0` said `jobs=0 is invalid; use 1 or more`: the library's keyword, not
    the flag (pull's --jobs says `Invalid value for '-j' / '--jobs'`)."""
    (tmp_path / "logs").mkdir()
    extra = ["--every", "1"] if command == "mirror" else []
    r = _drivestage(command, str(tmp_path / "logs"), str(tmp_path / "dest"), "--jobs", "0",
                    *extra)
    assert r.exit_code == 2, r.output
    assert error_line(r.stderr) == \
        "Error: Invalid value for '--jobs' / '-j': 0 is not in the range 1<=x<=64."
    assert not (tmp_path / "dest").exists()


# ------------------------------- a rerun after deleting one extracted file, on a full disk

def test_restoring_one_deleted_member_on_a_nearly_full_disk_says_how(
        emulator, drive_env, local_state, small_disk, tmp_path):
    """The walk deleted one image of an extracted dataset by hand on a nearly full 3 MiB disk
    and ran the pull again: `not enough free disk space to extract synth.tar.gz ...: needs
    2.4 MiB, only 404.0 KiB free; free some space or extract elsewhere` - for one 1 KiB file.
    Putting it back extracted the whole archive beside the copy in place. Since stage22 only
    what is missing is written, so it fits; where even that does not fit, the message says
    what it is for."""
    import io
    import re
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:   # small, as a tar.gz is
        for i in range(10):
            zf.writestr(f"ds/m{i:02d}.bin", bytes([i]) * 8192)
    emulator.add_file("VOC_datasets/data.zip", buf.getvalue())
    dest = small_disk(128 * 1024) / "data"                         # 80 KiB extracted fit once
    r = _drivestage("pull", "drive:VOC_datasets/data.zip", str(dest), "--extract")
    assert r.exit_code == 0, r.output
    (dest / "ds" / "m03.bin").unlink()
    media = len(_media_gets(emulator))
    r = _drivestage("pull", "drive:VOC_datasets/data.zip", str(dest), "--extract")
    assert r.exit_code == 0, r.output                          # 8 KiB asked, not 80 KiB
    assert (dest / "ds" / "m03.bin").read_bytes() == bytes([3]) * 8192
    # Where even the missing member does not fit, the message says so.
    (dest / "ds" / "m03.bin").unlink()
    filler = dest.parent / "filler"
    free = os.statvfs(dest).f_bavail * os.statvfs(dest).f_frsize
    filler.write_bytes(b"f" * max(0, free - 4096))
    r = _drivestage("pull", "drive:VOC_datasets/data.zip", str(dest), "--extract")
    assert r.exit_code == 1, r.output
    line = error_line(r.stderr)
    assert re.fullmatch(
        rf"Error: not enough free disk space to extract data\.zip into {re.escape(str(dest))}: "
        r"needs 8\.0 KiB \(8192 bytes\), only [\d.]+ (KiB|bytes) \(\d+ bytes\) free to put "
        r"back what is missing or changed here \(ds/m03\.bin first\); free some space and "
        r"run the same command \(the archive is kept\)", line), line
    assert len(_media_gets(emulator)) == media                 # nothing downloaded again
    filler.unlink()
    r = _drivestage("pull", "drive:VOC_datasets/data.zip", str(dest), "--extract")
    assert r.exit_code == 0, r.output
    assert (dest / "ds" / "m03.bin").stat().st_size == 8192
    assert len(_media_gets(emulator)) == media


def test_pull_extract_of_a_zip_that_fits_is_not_refused_for_bytes_already_on_disk(
        emulator, drive_env, local_state, small_disk):
    """A zip extracted while it downloads counted the whole download as still to come at the
    space check, though its bytes had arrived (on loopback, all of them) and the disk already
    held them: a 81 KiB zip of 80 KiB of members was refused on a 240 KiB disk (`needs 80.0
    KiB, only 71.0 KiB free`) that held it with 70 KiB to spare. Up to the archive's size
    asked twice: a 2 GB VOC zip on Kaggle's disk."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(10):
            zf.writestr(f"ds/m{i:02d}.bin", os.urandom(8192))
    emulator.add_file("VOC_datasets/data.zip", buf.getvalue())
    dest = small_disk(240 * 1024) / "data"
    r = _drivestage("pull", "drive:VOC_datasets/data.zip", str(dest), "--extract")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (dest / "ds").iterdir()) == [f"m{i:02d}.bin" for i in range(10)]
