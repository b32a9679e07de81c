"""A new user's path mistakes (walk18): each is refused with a message that names the path
and gives the one that works (see tests/_messages.py).

* a Colab mount path (``/content/drive/MyDrive/...``) where Drive is not mounted: a push
  there used to make the folders on local disk and report the files uploaded (exit 0), and
  ``drive.logs`` there mirrored every checkpoint to local disk, which ``trainer status``
  then called "verified on Drive";
* a pull of ``VOC_datasets/x.zip`` (``drive:`` forgotten) or of a sharing link without its
  ``https://``: looked up as a local path, with no word about Drive;
* ``drive:MyDrive/...``: the mount's folder name, which is not part of a ``drive:`` path.
"""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

import drivestage.localfs
from _messages import error_line, renders, shown
from drivestage.cli import cli

UNMOUNTED = "where Colab mounts Google Drive, but Drive is not mounted there"


@pytest.fixture
def content(tmp_path, monkeypatch):
    """A stand-in for Colab's ``/content`` in which nothing is mounted."""
    path = tmp_path / "content"
    path.mkdir()
    monkeypatch.setattr(drivestage.localfs, "COLAB_CONTENT", str(path))
    return path


@pytest.fixture
def logs(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "results.csv").write_text("epoch,loss\n1,0.5\n")
    return folder


def drivestage_cmd(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, error_line(result.stderr)


@renders(f"is under …, {UNMOUNTED} (a folder made there stays on this machine); write … "
         "instead: drivestage needs no mount")
def test_push_into_an_unmounted_colab_drive_path_is_refused(content, logs):
    dest = content / "drive" / "MyDrive" / "Models" / "logs"
    code, line = drivestage_cmd("push", str(logs), str(dest))
    assert code == 2
    assert line == (f"Error: {dest} is under {content / 'drive'}, {UNMOUNTED} (a folder made "
                    "there stays on this machine); write drive:Models/logs instead: "
                    "drivestage needs no mount")
    shown(f"is under …, {UNMOUNTED} (a folder made there stays on this machine); write … "
          "instead: drivestage needs no mount", line)
    assert os.listdir(content) == []  # nothing made on local disk


def test_the_old_recipes_gdrive_mount_and_shared_drives(content, logs):
    code, line = drivestage_cmd("push", str(logs),
                                str(content / "gdrive" / "Shareddrives" / "Team" / "runs"))
    assert code == 2 and "write drive:shared/Team/runs instead" in line
    code, line = drivestage_cmd("mirror", str(logs), str(content / "gdrive" / "My Drive"),
                                "--every", "60")
    assert code == 2 and "write drive: instead" in line
    assert os.listdir(content) == []


def test_pull_from_an_unmounted_colab_drive_path(content, tmp_path):
    src = content / "drive" / "MyDrive" / "VOC_datasets" / "VOC07+12+test.zip"
    code, line = drivestage_cmd("pull", str(src), str(tmp_path / "data"), "--extract")
    assert code == 2
    assert "write drive:VOC_datasets/VOC07+12+test.zip instead" in line
    assert not (tmp_path / "data").exists()


def test_a_relative_path_that_resolves_into_the_mount(content, logs, monkeypatch):
    monkeypatch.chdir(content)  # a notebook's working directory: /content
    code, line = drivestage_cmd("push", str(logs), "drive/MyDrive/logs")
    assert code == 2 and "write drive:logs instead" in line


def test_a_folder_of_that_name_elsewhere_is_only_a_folder(tmp_path, logs, content):
    dest = tmp_path / "backup" / "drive" / "MyDrive" / "logs"  # not under /content
    result = CliRunner().invoke(cli, ["push", str(logs), str(dest)])
    assert result.exit_code == 0, result.stderr
    assert (dest / "results.csv").read_text() == "epoch,loss\n1,0.5\n"


@pytest.mark.skipif(os.path.ismount("/content/drive"), reason="Drive is mounted here")
def test_the_real_colab_path_when_drive_is_not_mounted(logs):
    existed = os.path.lexists("/content/drive")
    code, line = drivestage_cmd("push", str(logs), "/content/drive/MyDrive/walk18-logs")
    assert code == 2 and "write drive:walk18-logs instead" in line
    assert os.path.lexists("/content/drive") == existed


def test_trainer_drive_logs_on_an_unmounted_colab_path(content, tiny_config, local_state):
    from trainer.cli import cli as trainer_cli

    logs_on_mount = content / "drive" / "MyDrive" / "Models" / "yolov4-tiny" / "logs"
    cfg = tiny_config(**{"drive.logs": str(logs_on_mount)})
    result = CliRunner().invoke(trainer_cli, ["status", "-c", cfg])
    assert result.exit_code == 2, result.stderr
    line = error_line(result.stderr)
    assert "write drive:Models/yolov4-tiny/logs instead" in line
    assert os.listdir(content) == []


def test_trainer_weights_on_an_unmounted_colab_path(content, tiny_config):
    from trainer.config import load_config
    from trainer.errors import ConfigError
    from trainer.staging import local_weights

    weights = content / "drive" / "MyDrive" / "Models" / "w.pth"
    cfg = load_config(tiny_config())
    with pytest.raises(ConfigError) as caught:
        local_weights(str(weights), cfg)
    assert str(caught.value) == (f"model.weights: file not found: {weights} (it is under "
                                 f"{content / 'drive'}, {UNMOUNTED}); write drive:Models/w.pth "
                                 "to pull it from Drive")


# ------------------------------------------------------------ a local SRC that meant Drive

@renders("(looked up as …); a file on Google Drive is written drive:…")
def test_pull_of_a_drive_path_without_drive_prefix(tmp_path, monkeypatch, env, drive_env):
    monkeypatch.chdir(tmp_path)
    code, line = drivestage_cmd("pull", "VOC_datasets/VOC07+12+test.zip", "./data", "--extract")
    assert code == 2
    assert line == (f"Error: no such file or folder: {tmp_path}/VOC_datasets/VOC07+12+test.zip "
                    "(looked up as 'VOC_datasets/VOC07+12+test.zip'); a file on Google Drive "
                    "is written drive:VOC_datasets/VOC07+12+test.zip")
    shown("(looked up as …); a file on Google Drive is written drive:…", line)


@renders("(looked up as …); a Drive sharing link starts with https://: …")
def test_pull_of_a_sharing_link_without_its_scheme(tmp_path, monkeypatch, env, drive_env):
    monkeypatch.chdir(tmp_path)
    code, line = drivestage_cmd("pull", "drive.google.com/file/d/1AbC/view?usp=sharing", "d")
    assert code == 2
    assert line.endswith("; a Drive sharing link starts with https://: "
                         "https://drive.google.com/file/d/1AbC/view?usp=sharing")
    shown("(looked up as …); a Drive sharing link starts with https://: …", line)


def test_a_path_that_is_plainly_local_gets_no_drive_hint(tmp_path, monkeypatch, env, drive_env):
    monkeypatch.chdir(tmp_path)
    for src in ("./VOC_datasets/x.zip", str(tmp_path / "x.zip"), "../x.zip", "~/x.zip"):
        code, line = drivestage_cmd("pull", src, "data")
        assert code == 2 and line.startswith("Error: no such file or folder:"), line
        assert "Google Drive" not in line and "https://" not in line, line


# ------------------------------------------------------------------------- drive:MyDrive/...

@renders("not found (no item named 'MyDrive' in drive:; names are case-sensitive); a drive: "
         "path starts inside My Drive: write drive:…")
def test_drive_path_that_starts_with_mydrive(emulator, env, drive_env, tmp_path):
    emulator.add_file("VOC_datasets/x.zip", b"zip")
    code, line = drivestage_cmd("pull", "drive:MyDrive/VOC_datasets/x.zip", str(tmp_path / "d"))
    assert code == 1
    assert line == ("Error: drive:MyDrive not found (no item named 'MyDrive' in drive:; names are "
                    "case-sensitive); a drive: path starts inside My Drive: write "
                    "drive:VOC_datasets/x.zip")
    shown("not found (no item named 'MyDrive' in drive:; names are case-sensitive); a drive: "
          "path starts inside My Drive: write drive:…", line)
    code, line = drivestage_cmd("ls", "drive:My Drive")
    assert code == 1 and line.endswith("write drive:")


def test_a_real_folder_called_mydrive_is_found(emulator, env, drive_env, tmp_path):
    emulator.add_file("MyDrive/x.bin", b"mine")
    result = CliRunner().invoke(cli, ["pull", "drive:MyDrive/x.bin", str(tmp_path / "d"), "-q"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "d" / "x.bin").read_bytes() == b"mine"
    code, line = drivestage_cmd("pull", "drive:MyDrive/y.bin", str(tmp_path / "d"))
    assert code == 1 and "starts inside My Drive" not in line


# --------------------------------------------------- drive.logs without drive: (a local folder)

@renders("is a local folder (…), not Google Drive: checkpoints are copied there only; a folder "
         "on Google Drive is written drive:…")
def test_drive_logs_without_the_drive_prefix_warns(tmp_path, monkeypatch, caplog):
    import logging

    from _messages import log_text
    from trainer.drive import DriveFolder

    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        DriveFolder("Models/yolov4-tiny/logs", str(tmp_path / "logs"))
    text = log_text([r for r in caplog.records if r.name.startswith("trainer")])
    assert text == (f"WARNING trainer.drive: drive.logs Models/yolov4-tiny/logs is a local folder "
                    f"({tmp_path}/Models/yolov4-tiny/logs), not Google Drive: checkpoints are "
                    "copied there only; a folder on Google Drive is written "
                    "drive:Models/yolov4-tiny/logs")
    shown("is a local folder (…), not Google Drive: checkpoints are copied there only; a folder "
          "on Google Drive is written drive:…", text)


def test_drive_logs_as_a_plainly_local_folder_is_not_warned_about(tmp_path, caplog, drive_env,
                                                                   env):
    import logging

    from trainer.drive import DriveFolder

    with caplog.at_level(logging.WARNING, logger="trainer"):
        DriveFolder(str(tmp_path / "nas" / "logs"), str(tmp_path / "logs"))
        DriveFolder("./backup/logs", str(tmp_path / "logs"))
        DriveFolder("drive:Models/logs", str(tmp_path / "logs"))
    assert [r for r in caplog.records if r.name.startswith("trainer")] == []


def test_a_bad_api_root_from_the_environment_names_the_variable(monkeypatch, env):
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", "127.0.0.1:8765")
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "t")
    code, line = drivestage_cmd("ls", "drive:")
    assert code == 2
    assert line == ("Error: DRIVESTAGE_API_ROOT '127.0.0.1:8765' is not an http(s) URL "
                    "(e.g. http://127.0.0.1:8765/)")
    code, line = drivestage_cmd("ls", "drive:", "--api-root", "localhost:1")
    assert code == 2 and line.startswith("Error: --api-root 'localhost:1' is not an http(s) URL")


# ------------------------------------------- the config key behind a Drive path not found

def test_weights_missing_on_drive_name_the_config_key(emulator, drive_env, local_state,
                                                       tiny_config):
    from trainer.cli import cli as trainer_cli

    cfg = tiny_config(**{"model.weights": "drive:Models/yolov4-tiny/model_data/coco.pth"})
    result = CliRunner().invoke(trainer_cli, ["train", "-c", cfg])
    assert result.exit_code == 1, result.stderr
    assert error_line(result.stderr) == (
        "Error: model.weights: drive:Models not found (no item named 'Models' in drive:; names "
        "are case-sensitive)")


def test_a_dataset_missing_on_drive_names_the_config_key(emulator, drive_env, local_state,
                                                         tiny_config):
    from trainer.cli import cli as trainer_cli

    emulator.add_folder("VOC_datasets")
    cfg = tiny_config(**{"data.drive_zip": "drive:VOC_datasets/VOC07+12.zip"})
    result = CliRunner().invoke(trainer_cli, ["train", "-c", cfg])
    assert result.exit_code == 1, result.stderr
    assert error_line(result.stderr) == (
        "Error: data.drive_zip: drive:VOC_datasets/VOC07+12.zip not found (no item named "
        "'VOC07+12.zip' in drive:VOC_datasets; names are case-sensitive)")


# ---------------------------------------------------------------- push into a file's path

@renders("exists and is a file, not a folder; a folder is needed there: push into another "
         "folder, or move that file away on Drive")
def test_push_whose_dest_is_a_file_on_drive(emulator, env, drive_env, logs):
    emulator.add_file("VOC_datasets/VOC07+12+test.zip", b"zip")
    for dest in ("drive:VOC_datasets/VOC07+12+test.zip", "drive:VOC_datasets/VOC07+12+test.zip/logs"):
        code, line = drivestage_cmd("push", str(logs), dest)
        assert code == 2
        assert line == ("Error: drive:VOC_datasets/VOC07+12+test.zip exists and is a file, not a "
                        "folder; a folder is needed there: push into another folder, or move "
                        "that file away on Drive")
        shown("exists and is a file, not a folder; a folder is needed there: push into another "
              "folder, or move that file away on Drive", line)
    assert [f["title"] for f in emulator.files()] == ["VOC_datasets", "VOC07+12+test.zip"]


# ------------------------------------------------------------------- push of a single file

@renders("is a file; push sends a folder: put the file in a folder of its own and push that "
         "folder (… puts … at …)")
def test_push_of_a_single_file(tmp_path, env, drive_env, emulator, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "VOCdevkit.zip").write_bytes(b"zip")
    for command in ("push", "mirror"):
        code, line = drivestage_cmd(command, "data/VOCdevkit.zip", "drive:VOC_datasets",
                                    *(("--every", "60") if command == "mirror" else ()))
        assert code == 2
        assert line == ("Error: SRC data/VOCdevkit.zip is a file; push sends a folder: put the "
                        "file in a folder of its own and push that folder (drivestage push "
                        "upload/ drive:VOC_datasets puts upload/VOCdevkit.zip at "
                        "drive:VOC_datasets/VOCdevkit.zip)")
        shown("is a file; push sends a folder: put the file in a folder of its own and push "
              "that folder (… puts … at …)", line)
    assert emulator.files() == []



# ------------------------------------------------------------- --resume with a Drive path

@renders("--resume takes a local checkpoint, not a path on Drive: … (or pull it first: "
         "drivestage pull … ./weights, then --resume weights/…)")
def test_resume_from_a_drive_path(tiny_config, monkeypatch):
    from trainer.cli import cli as trainer_cli

    spec = "drive:Models/yolov4-tiny/logs/epoch_004.pt"
    result = CliRunner().invoke(trainer_cli, ["train", "-c", tiny_config(), "--resume", spec])
    assert result.exit_code == 2, result.stderr
    line = error_line(result.stderr)
    assert line == (f"Error: --resume {spec}: --resume takes a local checkpoint, not a path on "
                    "Drive: with drive.logs set to its folder, --resume auto continues from the "
                    "newest checkpoint verified there (or pull it first: drivestage pull "
                    f"{spec} ./weights, then --resume weights/epoch_004.pt)")
    shown("--resume takes a local checkpoint, not a path on Drive: … (or pull it first: "
          "drivestage pull … ./weights, then --resume weights/…)", line)


@renders("makes a folder called 'MyDrive' at the top of My Drive: a drive: path starts inside "
         "My Drive (/content/drive/MyDrive/… is drive:…)")
def test_push_that_makes_a_mydrive_folder_warns_once(emulator, env, drive_env, logs, caplog):
    import logging

    import drivestage
    from _messages import log_text

    with caplog.at_level(logging.WARNING, logger="drivestage"):
        drivestage.push(str(logs), "drive:MyDrive/Models/x")
    text = log_text([r for r in caplog.records if r.name.startswith("drivestage")])
    assert text == ("WARNING drivestage.drive.store: drive:MyDrive makes a folder called 'MyDrive' "
                    "at the top of My Drive: a drive: path starts inside My Drive "
                    "(/content/drive/MyDrive/Models/x is drive:Models/x)")
    shown("makes a folder called 'MyDrive' at the top of My Drive: a drive: path starts inside "
          "My Drive (/content/drive/MyDrive/… is drive:…)", text)
    assert emulator.find("MyDrive/Models/x/results.csv") is not None  # pushed as asked
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        drivestage.push(str(logs), "drive:MyDrive/Models/y")   # the folder is there now
    assert [r for r in caplog.records if r.name.startswith("drivestage")] == []


def test_an_epochs_map_of_zero_is_shown_as_zero_not_nan(caplog):
    """The epoch line printed ``mAP@0.5:0.95 nan`` for a measured 0.0 (``x or nan``), while
    the run's last lines said 0.0000 for the same number."""
    from trainer.engine import metric_text

    assert metric_text(0.0) == "0.0000"
    assert metric_text(0.01944) == "0.0194"
    assert metric_text(None) == "n/a"
