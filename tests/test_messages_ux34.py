"""ux34: a new Colab/Kaggle user following README.md and docs/ literally against the
emulator, making the mistakes such a user makes; each message below was unclear, wrong or
noise before (one line naming the thing and what to do is the rule)."""
from __future__ import annotations

import logging

from click.testing import CliRunner

from _messages import renders, shown


# ------------------------------------------ no word of an old weights folder that is not there

def test_a_fresh_start_with_drive_weights_says_nothing_of_an_old_weights_folder(
        emulator, local_state, drive_env, tiny_config, tmp_path, caplog):
    """`model.weights: drive:…` on a fresh data.root logged, twice a start,
    `left ./data/demo/weights as it is: [Errno 2] No such file or directory: …`: the
    look for a copy an older version pulled (there is none) read as a failure."""
    from trainer.config import load_config
    from trainer.staging import local_weights, stage_data

    emulator.add_file("Models/pre/w.pth", b"weights")
    cfg = load_config(tiny_config(**{"model.weights": "drive:Models/pre/w.pth"}))
    with caplog.at_level(logging.INFO, logger="trainer"):
        stage_data(cfg)
        local_weights(cfg.model.weights, cfg)
    said = [r.getMessage() for r in caplog.records if r.name == "trainer.derived"]
    assert said == []
    assert not (tmp_path / "data" / "weights").exists()


# ----------------------------------------- data.drive_zip naming a file that is no archive

@renders("is not a zip or tar archive")
def test_a_drive_zip_that_is_no_archive_names_the_setting_not_an_option(
        emulator, local_state, drive_env, tiny_config, tmp_path):
    """`--set data.drive_zip=drive:VOC_datasets/labels.zip` (a file that is no archive) ended
    in `Error: --extract: … is not a zip or tar archive (…); pull it without --extract`: the
    trainer has no --extract, and the dataset is of no use unextracted."""
    from trainer.cli import cli as trainer_cli

    emulator.add_file("VOC_datasets/labels.zip", b"these are not the archive's bytes\n")
    cfg = tiny_config(**{"data.drive_zip": "drive:VOC_datasets/labels.zip"})
    result = CliRunner().invoke(trainer_cli, ["train", "-c", cfg])
    assert result.exit_code == 1, (result.stderr, result.exception)
    # (after the download's progress bar, on its line)
    line = result.stderr[result.stderr.rindex("Error: "):].strip()
    assert result.stderr.count("Error: ") == 1 and "Traceback" not in result.stderr
    pulled = tmp_path / "data" / "labels.zip"
    assert line == (
        f"Error: data.drive_zip: drive:VOC_datasets/labels.zip is not a zip or tar archive "
        f"(downloaded to {pulled}); set data.drive_zip to the dataset's archive (.zip, .tar, "
        ".tar.gz/.tgz, .tar.bz2, .tar.xz), or leave it null and point data.root at the "
        "extracted dataset")
    shown("is not a zip or tar archive", line)
    assert pulled.read_bytes() == b"these are not the archive's bytes\n"
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").iterdir())


# ------------------------------------------------- a Drive path written with another prefix

@renders("(looked up as …); a file on Google Drive is written drive:…")
def test_a_drive_path_with_another_prefix_is_shown_as_drive_colon(
        tmp_path, monkeypatch, local_state, drive_env):
    """`gdrive:VOC_datasets/x.zip` (rclone's remote, other tools' prefix) or `Drive:…` said
    `a file on Google Drive is written drive:gdrive:VOC_datasets/x.zip`: the wrong prefix
    kept inside the advice."""
    from _messages import command_error

    monkeypatch.chdir(tmp_path)
    for typed in ("gdrive:VOC_datasets/x.zip", "Drive:VOC_datasets/x.zip",
                  "gdrive:/VOC_datasets/x.zip"):
        line = command_error("pull", typed, "./data", code=2)
        assert line == (f"Error: no such file or folder: {tmp_path}/{typed} (looked up as "
                        f"{typed!r}); a file on Google Drive is written "
                        "drive:VOC_datasets/x.zip"), typed
        shown("(looked up as …); a file on Google Drive is written drive:…", line)
    line = command_error("pull", "my:notes.txt", "./data", code=2)   # a plain local name: as before
    assert line.endswith("a file on Google Drive is written drive:my:notes.txt"), line


# ---------------------------------------------------------------- ls of a path without drive:

def test_ls_of_a_drive_folder_without_drive_prefix_says_how_to_write_it(
        tmp_path, monkeypatch, local_state, drive_env, emulator):
    """`drivestage ls VOC_datasets` (as `ls` is typed in a shell) said only `no such file or
    folder: …/VOC_datasets (looked up as 'VOC_datasets')`, where pull says how a path on
    Drive is written."""
    from _messages import command_error

    emulator.add_file("VOC_datasets/x.zip", b"zip")
    monkeypatch.chdir(tmp_path)
    line = command_error("ls", "VOC_datasets", code=2)
    assert line == (f"Error: no such file or folder: {tmp_path}/VOC_datasets (looked up as "
                    "'VOC_datasets'); a folder on Google Drive is written drive:VOC_datasets")
    line = command_error("ls", "./VOC_datasets", code=2)   # plainly local: nothing added
    assert line == (f"Error: no such file or folder: {tmp_path}/VOC_datasets (looked up as "
                    "'VOC_datasets')")


# -------------------------------------------------- a key given without its section

def test_a_key_without_its_section_is_named_with_it(tmp_path):
    """`--set logs=drive:…` or `epochs: 10` at the top of the YAML (the recipe's train.py
    variables have no sections) said `unknown config section 'logs' …; valid sections: data,
    model, train, drive`, leaving the user to find which section holds it."""
    from trainer.cli import cli as trainer_cli

    config = tmp_path / "c.yaml"
    config.write_text("drive:\n  logs: drive:Models/x/logs\n")
    result = CliRunner().invoke(trainer_cli, ["status", "-c", str(config),
                                              "--set", "logs=drive:Models/y/logs"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == ("Error: unknown config section 'logs' (--set); did you "
                                     "mean 'drive.logs'?")
    config.write_text("epochs: 10\n")
    result = CliRunner().invoke(trainer_cli, ["status", "-c", str(config)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f"Error: unknown config section 'epochs' in {config}; "
                                     "did you mean 'train.epochs'?")
    config.write_text("trian:\n  epochs: 10\n")   # a misspelt section: as before
    result = CliRunner().invoke(trainer_cli, ["status", "-c", str(config)])
    assert result.stderr.strip() == (f"Error: unknown config section 'trian' in {config}; "
                                     "did you mean 'train'?")


# ------------------------------------------------- push DEST without drive: (a local folder)

PUSH_LOCAL = ("is a local folder (…), not Google Drive: the push copies there only; a folder on "
              "Google Drive is written drive:…")


@renders(PUSH_LOCAL)
def test_push_to_a_dest_without_drive_prefix_warns(tmp_path, monkeypatch, local_state):
    """`drivestage push logs Models/yolov4-tiny/logs` (`drive:` forgotten) made that folder
    on this machine and said `push logs -> Models/yolov4-tiny/logs: 1 uploaded`, exit 0:
    nothing reached Drive, and nothing said so (trainer's drive.logs warns of the same)."""
    from drivestage.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "results.csv").write_text("epoch\n1\n")
    result = CliRunner().invoke(cli, ["push", "logs", "Models/yolov4-tiny/logs"])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "not Google Drive" in line]
    assert warned == [
        "WARNING drivestage.cli.push: DEST Models/yolov4-tiny/logs is a local folder "
        f"({tmp_path}/Models/yolov4-tiny/logs), not Google Drive: the push copies there only; "
        "a folder on Google Drive is written drive:Models/yolov4-tiny/logs"], result.stderr
    shown(PUSH_LOCAL, warned[0])
    assert (tmp_path / "Models/yolov4-tiny/logs/results.csv").read_text() == "epoch\n1\n"
    # A local folder that is there, or one written plainly local, is meant: no word.
    for dest in ("Models/yolov4-tiny/logs", "./backup", str(tmp_path / "abs")):
        result = CliRunner().invoke(cli, ["push", "logs", dest])
        assert result.exit_code == 0, result.output
        assert "not Google Drive" not in result.stderr, (dest, result.stderr)


# ---------------------------------------------- --api-root with the API's own path in it

@renders("ends in the Drive API's own path (…); give the server's root: …")
def test_an_api_root_ending_in_the_api_path_says_which_root_to_give(local_state, monkeypatch):
    """`DRIVESTAGE_API_ROOT=http://127.0.0.1:8765/drive/v2/` (the address of Drive's files
    API, as googleapiclient's docs show it) ended in `not found on Drive (HTTP 404 …: GET
    /drive/v2/drive/v2/files)`: the server blamed for a setting."""
    from _messages import command_error

    monkeypatch.setenv("DRIVESTAGE_TOKEN", "t")
    for typed in ("http://127.0.0.1:8765/drive/v2/", "http://127.0.0.1:8765/drive/v3"):
        line = command_error("ls", "drive:", "--api-root", typed, code=2)
        assert line == (f"Error: --api-root {typed!r} ends in the Drive API's own path "
                        f"({typed[len('http://127.0.0.1:8765'):]}); give the server's root: "
                        "http://127.0.0.1:8765/"), line
        shown("ends in the Drive API's own path (…); give the server's root: …", line)
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", "https://www.googleapis.com/drive/v2")
    line = command_error("ls", "drive:", code=2)
    assert line == ("Error: DRIVESTAGE_API_ROOT 'https://www.googleapis.com/drive/v2' ends in "
                    "the Drive API's own path (/drive/v2); give the server's root: "
                    "https://www.googleapis.com/")


# --------------------------------------------- --resume PATH that is not there: before the pull

def test_resume_from_a_missing_path_is_refused_before_the_dataset_is_pulled(
        emulator, local_state, drive_env, tiny_config, tmp_path):
    """`--resume logs/epoch_010.pt` on a fresh runtime (logs/ empty) pulled and extracted
    the whole dataset first (minutes for VOC), then said `no such file`, exit 1; a bad path
    is a usage error (exit 2), said at once."""
    from trainer.cli import cli as trainer_cli

    emulator.add_file("VOC_datasets/VOC.zip", b"not fetched")
    cfg = tiny_config(**{"data.drive_zip": "drive:VOC_datasets/VOC.zip"})
    emulator.clear_requests()
    missing = tmp_path / "logs" / "epoch_010.pt"
    result = CliRunner().invoke(trainer_cli, ["train", "-c", cfg, "--resume", str(missing)])
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert result.stderr.strip() == (f"Error: --resume {missing}: no such file; use --resume "
                                     "auto or a checkpoint path")
    assert list(emulator.requests) == []
    assert not (tmp_path / "data").exists()


def test_eval_of_weights_that_are_not_there_is_refused_before_the_dataset_is_pulled(
        emulator, local_state, drive_env, tiny_config, tmp_path):
    """`trainer eval -c configs/voc.yaml -w logs/best.pt` on a fresh runtime pulled the
    dataset, then said `--weights: file not found: logs/best.pt`."""
    from trainer.cli import cli as trainer_cli

    emulator.add_file("VOC_datasets/VOC.zip", b"not fetched")
    cfg = tiny_config(**{"data.drive_zip": "drive:VOC_datasets/VOC.zip"})
    emulator.clear_requests()
    missing = tmp_path / "logs" / "best.pt"
    result = CliRunner().invoke(trainer_cli, ["eval", "-c", cfg, "-w", str(missing)])
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert result.stderr.strip() == f"Error: --weights: file not found: {missing}"
    assert list(emulator.requests) == []
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------- auth login --client-secrets mistakes

def test_login_with_a_folder_or_a_service_account_key_as_client_secrets(tmp_path, local_state):
    """`drivestage auth login --client-secrets configs` (a folder) ended in a traceback
    (`IsADirectoryError`); a service-account key there was `not an OAuth client secret
    (expected an 'installed' entry …)`, not what to do with such a key."""
    import json

    from _messages import command_error

    line = command_error("auth", "login", "--client-secrets", str(tmp_path), code=2)
    assert line == (f"Error: cannot read client secrets file {str(tmp_path)!r}: it is a folder; "
                    "give the JSON file of an OAuth client ID (Google Cloud console, type "
                    "Desktop app)")
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account", "client_email": "a@b.iam",
                               "private_key": "k", "token_uri": "https://t"}))
    line = command_error("auth", "login", "--client-secrets", str(key), code=2)
    assert line == (f"Error: {str(key)!r} is not an OAuth client secret (expected an 'installed' "
                    "entry with client_id and client_secret): it is a service-account key, "
                    "which needs no login; pass it with --credentials (or "
                    "DRIVESTAGE_CREDENTIALS)")


# ------------------------------------------------------- train.out_dir that is a file

def test_an_out_dir_that_is_a_file_is_one_line(tiny_config, tmp_path):
    """`--set train.out_dir=configs/demo.yaml` (or a folder under that file) ended in a
    traceback (`FileExistsError: [Errno 17] File exists: 'configs/demo.yaml'`)."""
    from trainer.cli import cli as trainer_cli

    afile = tmp_path / "demo.yaml"
    afile.write_text("train: {}\n")
    for out_dir in (afile, afile / "logs"):
        cfg = tiny_config(**{"train.out_dir": str(out_dir)})
        result = CliRunner().invoke(trainer_cli, ["train", "-c", cfg])
        assert result.exit_code == 2, (result.stderr, result.exception)
        assert result.stderr.strip() == (
            f"Error: train.out_dir {out_dir} cannot be made: {afile} is a file, not a folder; "
            "set train.out_dir to a folder"), out_dir
        assert afile.read_text() == "train: {}\n"


def test_weights_given_as_a_folder_say_so(tiny_config, tmp_path):
    """`-w logs` or `model.weights: logs` (the run folder, not best.pt in it) said `file not
    found: logs`, of a folder that is there."""
    from trainer.cli import cli as trainer_cli
    from trainer.config import load_config
    from trainer.errors import ConfigError
    from trainer.staging import local_weights

    folder = tmp_path / "logs"
    folder.mkdir()
    result = CliRunner().invoke(trainer_cli, ["eval", "-c", tiny_config(), "-w", str(folder)])
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert result.stderr.strip() == (f"Error: --weights: {folder} is a folder; give a weights "
                                     "file (e.g. best.pt in it)")
    cfg = load_config(tiny_config(**{"model.weights": str(folder)}))
    try:
        local_weights(str(folder), cfg)
    except ConfigError as exc:
        assert str(exc) == (f"model.weights: {folder} is a folder; give a weights file (e.g. "
                            "best.pt in it)")
    else:
        raise AssertionError("a folder was taken for weights")


# ---------------------------------------------------- SRC and DEST swapped (pull vs push)

@renders("is a path on Google Drive, and pull writes to this machine")
def test_pull_to_a_drive_dest_is_refused_not_made_a_local_folder(
        tmp_path, monkeypatch, local_state, drive_env, emulator):
    """`drivestage pull ./synth drive:VOC_datasets` (push meant, or the arguments swapped)
    made a local folder named `drive:VOC_datasets` in the working directory, copied SRC
    into it and exited 0; a later `push drive:VOC_datasets …` (swapped the same way) then
    found that folder and pushed it."""
    from _messages import command_error

    emulator.add_file("VOC_datasets/x.zip", b"zip")
    here = tmp_path / "work"
    (here / "synth").mkdir(parents=True)
    (here / "synth" / "a.txt").write_text("a")
    monkeypatch.chdir(here)
    line = command_error("pull", "./synth", "drive:VOC_datasets", code=2)
    assert line == ("Error: DEST drive:VOC_datasets is a path on Google Drive, and pull writes "
                    "to this machine; to send ./synth to Drive: drivestage push ./synth "
                    "drive:VOC_datasets")
    shown("is a path on Google Drive, and pull writes to this machine", line)
    line = command_error("pull", "drive:VOC_datasets/x.zip", "drive:elsewhere", code=2)
    assert line == ("Error: DEST drive:elsewhere is a path on Google Drive, and pull writes to "
                    "this machine; give a local folder as DEST (e.g. ./data)")
    assert sorted(p.name for p in here.iterdir()) == ["synth"]


@renders("is a path on Google Drive, and push sends a local folder")
def test_push_from_a_drive_src_says_pull_copies_from_drive(tmp_path, monkeypatch, local_state):
    """`drivestage push drive:VOC_datasets ./data` (pull meant) said `drive:VOC_datasets is
    not a local folder; give the folder to push`, exit 1: not that the arguments were
    swapped, nor what copies from Drive."""
    from _messages import command_error

    monkeypatch.chdir(tmp_path)
    for command in ("push", "mirror"):
        extra = ["--every", "60"] if command == "mirror" else []
        line = command_error(command, "drive:VOC_datasets", "./data", *extra, code=2)
        assert line == ("Error: SRC drive:VOC_datasets is a path on Google Drive, and push "
                        "sends a local folder; to copy it to this machine: drivestage pull "
                        "drive:VOC_datasets ./data"), command
        shown("is a path on Google Drive, and push sends a local folder", line)
    line = command_error("push", "drive:a", "drive:b", code=2)
    assert line == ("Error: SRC drive:a is a path on Google Drive, and push sends a local "
                    "folder; give a local folder as SRC (e.g. logs/)")
    assert not (tmp_path / "data").exists()


def test_a_drive_data_root_says_what_data_root_and_drive_zip_are(tiny_config, local_state):
    """`data.root: drive:VOC_datasets` (the dataset's Drive folder) said `DEST drive:… is a
    path on Google Drive …` with data.drive_zip set (no DEST in a config), and `no VOCdevkit
    was found under data.root='drive:VOC_datasets'` without it."""
    from trainer.cli import cli as trainer_cli

    for more in ({}, {"data.drive_zip": "drive:VOC_datasets/VOC.zip"}):
        cfg = tiny_config(**{"data.root": "drive:VOC_datasets", "data.train": "train",
                             "data.val": "val", **more})
        result = CliRunner().invoke(trainer_cli, ["train", "-c", cfg])
        assert result.exit_code == 2, (result.stderr, result.exception)
        assert result.stderr.strip() == (
            "Error: data.root drive:VOC_datasets is a path on Google Drive; data.root is the "
            "folder on this machine the dataset is staged into (e.g. ./data), and "
            "data.drive_zip the archive on Drive to stage"), more


def test_weights_written_without_drive_prefix_say_how_to_write_them(
        tiny_config, tmp_path, monkeypatch):
    """`model.weights: Models/yolov4-tiny/model_data/coco.pth` (`drive:` forgotten) said only
    `file not found`, where data.drive_zip (and pull) say how a Drive path is written."""
    from trainer.config import load_config
    from trainer.errors import ConfigError
    from trainer.staging import local_weights

    monkeypatch.chdir(tmp_path)
    cfg = load_config(tiny_config())
    for spec, hint in (("Models/coco.pth", "; a file on Google Drive is written "
                        "drive:Models/coco.pth"), ("./coco.pth", "")):
        try:
            local_weights(spec, cfg)
        except ConfigError as exc:
            assert str(exc) == f"model.weights: file not found: {spec}{hint}"
        else:
            raise AssertionError(spec)


def test_status_of_a_drive_logs_that_is_a_file_says_so(emulator, local_state, drive_env,
                                                       tiny_config):
    """`drive.logs: drive:VOC_datasets/VOC.zip` (a file named where the run's folder goes)
    said `no verified checkpoint on drive:VOC_datasets/VOC.zip yet`, as if a run would
    save there."""
    from trainer.cli import cli as trainer_cli

    emulator.add_file("VOC_datasets/VOC.zip", b"zip")
    cfg = tiny_config(**{"drive.logs": "drive:VOC_datasets/VOC.zip"})
    result = CliRunner().invoke(trainer_cli, ["status", "-c", cfg])
    assert result.exit_code == 1, (result.stderr, result.exception)
    assert result.stderr.strip() == (
        "Error: drive.logs drive:VOC_datasets/VOC.zip is a file, not a folder; "
        "drive.logs names the run's folder (where its checkpoints go)")


def test_train_with_a_drive_logs_that_is_a_file_names_the_setting(
        emulator, local_state, drive_env):
    """The same drive.logs in `trainer train` ended in `Error: drive:VOC_datasets/VOC.zip
    exists and is a file, not a folder` (its check before training): which setting, and
    what to do, unsaid."""
    import pytest

    from _messages import error_text
    from drivestage.errors import UsageError
    from trainer.drive import DriveFolder

    emulator.add_file("VOC_datasets/VOC.zip", b"zip")
    folder = DriveFolder("drive:VOC_datasets/VOC.zip", "logs")
    with pytest.raises(UsageError) as caught:
        folder.check_writable()   # as trainer.engine.fit calls it, before the first step
    assert error_text(caught.value) == (
        "Error: drive.logs drive:VOC_datasets/VOC.zip exists and is a file, not a folder; "
        "drive.logs names the run's folder (where its checkpoints go)")
    assert emulator.read_bytes(emulator.find("VOC_datasets/VOC.zip")["id"]) == b"zip"


def test_a_data_year_the_devkit_lacks_names_the_years_it_has(synth_voc, tiny_config):
    """`--set data.year=2012` over a VOCdevkit holding only VOC2007 said `no VOCdevkit was
    found under data.root=…`, of a folder that holds one."""
    from trainer.config import load_config
    from trainer.errors import DataError
    from trainer.staging import stage_data

    root = str(synth_voc.voc_root.parent)
    cfg = load_config(tiny_config(**{"data.root": root, "data.train": "train",
                                     "data.val": "val", "data.year": "2012"}))
    try:
        stage_data(cfg)
    except DataError as exc:
        assert str(exc) == (f"data.train='train' is neither an annotation file nor a split of a "
                            f"VOCdevkit; no VOCdevkit/VOC2012 was found under data.root={root!r} "
                            f"(it holds {synth_voc.voc_root / 'VOC2007'}: set data.year=2007)")
    else:
        raise AssertionError("a year the devkit lacks was taken")


def test_model_weights_that_are_not_there_are_refused_before_the_dataset_is_pulled(
        emulator, local_state, drive_env, tiny_config, tmp_path):
    """`model.weights: model_data/yolov4_tiny_weights_coco.pth` not on this machine: the
    dataset was pulled and extracted first (minutes for VOC), then `model.weights: file not
    found`."""
    from trainer.cli import cli as trainer_cli

    emulator.add_file("VOC_datasets/VOC.zip", b"not fetched")
    missing = tmp_path / "model_data" / "coco.pth"
    cfg = tiny_config(**{"data.drive_zip": "drive:VOC_datasets/VOC.zip",
                         "model.weights": str(missing)})
    emulator.clear_requests()
    result = CliRunner().invoke(trainer_cli, ["train", "-c", cfg])
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert result.stderr.strip() == f"Error: model.weights: file not found: {missing}"
    assert list(emulator.requests) == []
    assert not (tmp_path / "data").exists()
