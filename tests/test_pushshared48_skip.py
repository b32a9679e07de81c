"""A folder on Drive at one file's name (alone: FolderInTheWayError; beside the file:
NameSharedError) no longer refuses the whole push (pushshared48; attackint48 finding 2): that
name is not sent, everything else is, the name is said in one line (once while it stays, a
mirror's periods included), and the push ends exit 1 (a partial push). Real CLI against the
emulator."""
from __future__ import annotations

import hashlib
import time

import pytest

from _cli import run
from _drive_state import live_md5s
from _envs import env  # noqa: F401  (a fixture)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_a_folder_at_the_second_of_three_checkpoints_sends_the_first_and_third(
        emulator, drive_env, local_state, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    for i in (1, 2, 3):
        (src / f"epoch_00{i}.pt").write_bytes(b"ckpt %d" % i)
    emulator.add_folder("runs/a/epoch_002.pt")
    code, _, err = run("push", str(src), "drive:runs/a")
    lines = err.strip().splitlines()
    assert code == 1, err
    assert lines[-1] == (
        "Error: 1 file of SRC not sent: a folder on Drive has its name (the line above names "
        "it); everything else was pushed, and nothing at that name on Drive was removed; push "
        "again once the folder is renamed"), err
    said = [ln for ln in lines if "exists and is a folder, not a file" in ln]
    assert len(said) == 1 and said[0].endswith(
        f"drive:runs/a/epoch_002.pt exists and is a folder, not a file; {src}/epoch_002.pt "
        f"cannot be sent there: rename one of them, or push with --delete to replace the "
        f"folder"), err
    assert live_md5s(emulator, "runs/a") == {
        "epoch_001.pt": [_md5(b"ckpt 1")], "epoch_002.pt": [None],
        "epoch_003.pt": [_md5(b"ckpt 3")]}
    assert "2 uploaded" in err and "1 not sent (a folder has the name)" in err, err


def test_a_folder_beside_a_sent_file_keeps_only_that_name_and_is_said_once(
        emulator, drive_env, local_state, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"one")
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    emulator.add_folder("runs/a/epoch_001.pt")
    (src / "epoch_001.pt").write_bytes(b"one, saved again")
    (src / "epoch_002.pt").write_bytes(b"two")
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 1, err
    line = (f"drive:runs/a holds a folder and a file both named epoch_001.pt (the folder made "
            f"there while the file was sent?): a pull refuses that name until one of them "
            f"goes, and {src}/epoch_001.pt is not sent again; rename or remove the folder on "
            f"Drive, or push with --delete to remove it")
    assert [ln for ln in err.splitlines() if "holds a folder and a file" in ln][0].endswith(
        line), err
    assert live_md5s(emulator, "runs/a") == {
        "epoch_001.pt": sorted([None, _md5(b"one")], key=str), "epoch_002.pt": [_md5(b"two")]}


def test_a_mirrors_periods_send_the_rest_and_say_the_name_once(
        emulator, env, store, tmp_path, caplog):
    """Three periods, each with a new checkpoint, a folder at ``epoch_001.pt`` on Drive: each
    period sends what is new (before, each refused everything), the name's line is said
    once and so is the period's failure (it is the same each time)."""
    from drivestage.errors import MirrorError
    from drivestage.mirror import Mirror

    src = tmp_path / "logs"
    src.mkdir()
    emulator.add_folder("runs/logs/epoch_001.pt")
    (src / "epoch_001.pt").write_bytes(b"ckpt 1")
    m = Mirror(str(src), (store, "runs/logs"), None).start()
    try:
        for i in (2, 3, 4):
            (src / f"epoch_00{i}.pt").write_bytes(b"ckpt %d" % i)
            with pytest.raises(MirrorError):
                m.flush(60)
    finally:
        with pytest.raises(MirrorError):
            m.stop(60)
    assert live_md5s(emulator, "runs/logs") == {
        "epoch_001.pt": [None], **{f"epoch_00{i}.pt": [_md5(b"ckpt %d" % i)] for i in (2, 3, 4)}}
    said = [r.getMessage() for r in caplog.records]
    assert [m for m in said if "is a folder, not a file" in m] == [
        f"drive:runs/logs/epoch_001.pt exists and is a folder, not a file; {src}/epoch_001.pt "
        f"cannot be sent there: rename one of them, or push with --delete to replace the "
        f"folder"], said
    assert len([m for m in said if "failed (will try again)" in m]) == 1, said


@pytest.mark.parametrize("blocked", [1, 2])
def test_a_training_runs_other_checkpoints_reach_drive(
        emulator, drive_env, local_state, tiny_config, tmp_path, blocked):
    """The trainer's save policy, writer and DriveFolder, a folder at one epoch's name on
    Drive (1: an older save's, 2: the final save's): the other epoch's checkpoint reaches
    Drive verified with its sidecar (before, every push was refused). The run ends exit 1
    (MirrorError), as for any checkpoint of the run Drive lacks at the end, naming the one
    not there and the one verified there."""
    from drivestage.errors import MirrorError
    from test_lastkeep32_drive import SPEC
    from test_train28_hung_disk import _policy
    from trainer.drive import DriveFolder
    from trainer.state import Position

    folder = SPEC.split(":", 1)[1]
    logs = tmp_path / "logs"
    emulator.add_folder(f"{folder}/epoch_00{blocked}.pt")
    drive = DriveFolder(SPEC, str(logs))
    run, writer, saver = _policy(tiny_config, logs, drive)
    try:
        run.state.pos = Position(1, 2, 0)
        saver.on_fit_epoch_end(run, Position(1, 2, 0), {})
        assert writer.wait(saver._epoch_job)
        assert writer.wait_pushed(writer.push_soon(), time.monotonic() + 30)
        if blocked == 1:   # (a failed push: retried by the next)
            assert str(writer.last_error).startswith(
                "1 file of SRC not sent: a folder on Drive has its name"), writer.last_error
        run.state.pos = Position(2, 4, 0)
        saver.on_fit_epoch_end(run, Position(2, 4, 0), {})
        with pytest.raises(MirrorError) as ended:
            saver.on_fit_end(run)
    finally:
        writer.close()
    sent = 3 - blocked
    on_drive = live_md5s(emulator, folder)
    assert on_drive[f"epoch_00{blocked}.pt"] == [None], on_drive
    assert f"epoch_00{blocked}.json" not in on_drive, on_drive
    assert on_drive[f"epoch_00{sent}.pt"] == [
        hashlib.md5((logs / f"epoch_00{sent}.pt").read_bytes()).hexdigest()]
    assert f"epoch_00{sent}.json" in on_drive, on_drive
    assert (f"failed: 1 file of SRC not sent: a folder on Drive has its name (the line above "
            f"names it); everything else was pushed, and nothing at that name on Drive was "
            f"removed; push again once the folder is renamed; the newest verified there is "
            f"epoch_00{sent}.pt (epoch {sent}, iteration {2 * sent}); not there: "
            f"epoch_00{blocked}.pt: upload them with") in str(ended.value), ended.value


def test_retention_keeps_the_newest_verified_when_the_newest_local_name_is_blocked(
        emulator, drive_env, local_state, tmp_path):
    """``--keep-last 1``, a folder at the newest checkpoint's name: the plan sees Drive as it
    is (that checkpoint never sent), so the one verified there stays, its sidecar too; the
    blocked checkpoint's sidecar is not sent (it would vouch for nothing there)."""
    from _checkpoints import save

    src = tmp_path / "run"
    save(str(src), "epoch_001", 1, 1_000_000)
    two = save(str(src), "epoch_002", 2, 1_000_100)
    code, _, err = run("push", str(src), "drive:runs/a", "--keep-last", "1")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == two
    save(str(src), "epoch_003", 3, 1_000_200)
    emulator.add_folder("runs/a/epoch_003.pt")
    code, _, err = run("push", str(src), "drive:runs/a", "--keep-last", "1")
    assert code == 1, err
    assert live_md5s(emulator, "runs/a") == {**two, "epoch_003.pt": [None]}


@pytest.mark.parametrize("name", ["epoch_002.pt", "epoch_002.json"])
def test_a_folder_made_during_the_push_leaves_retention_the_old_pair(
        emulator, through, proxy, tmp_path, name):
    """``--keep-last 1``, a folder made at the new checkpoint's name (or its sidecar's) as it
    is sent: its copy is taken back, and the push goes on to retention (before, it stopped
    there, exit 2). The plan made again sees the new pair unsent: the old verified pair
    stays, and the push exits 1 naming the name."""
    from _checkpoints import save
    from _proxy import when_sending

    src = tmp_path / "run"
    old = save(str(src), "epoch_001", 1, 1_000_000)
    code, _, err = run("push", str(src), "drive:runs/a", "--keep-last", "1")
    assert code == 0, err
    save(str(src), "epoch_002", 2, 1_000_100)
    made = when_sending(proxy, lambda: emulator.add_folder(f"runs/a/{name}"))
    code, _, err = run("push", str(src), "drive:runs/a", "--keep-last", "1")
    assert made, "the folder was never made during the push"
    assert code == 1, err
    assert err.strip().splitlines()[-1].startswith(
        "Error: 1 file of SRC not sent: a folder on Drive has its name"), err
    assert live_md5s(emulator, "runs/a") == {**old, name: [None]}, err


def test_twelve_blocked_names_are_said_in_ten_lines_and_a_count(
        emulator, drive_env, local_state, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    for i in range(12):
        (src / f"f{i:02d}.txt").write_bytes(b"%d" % i)
        emulator.add_folder(f"runs/a/f{i:02d}.txt")
    (src / "sent.txt").write_bytes(b"sent")
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len([ln for ln in lines if "is a folder, not a file" in ln]) == 10, err
    assert any(ln.endswith("... and 2 more names of SRC that a folder on Drive holds")
               for ln in lines), err
    assert lines[-1] == (
        "Error: 12 files of SRC not sent: a folder on Drive has their names (the lines above "
        "name them); everything else was pushed, and nothing at those names on Drive was "
        "removed; push again once the folders are renamed"), err
    assert live_md5s(emulator, "runs/a")["sent.txt"] == [_md5(b"sent")]
