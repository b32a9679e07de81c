"""The refusal of ``pull -x`` over the user's own files at member paths (clobber32): as the
drivestage command says it, and as the trainer's ``data.drive_zip`` does (whose user has no
``--force``: the line gives the drivestage command)."""
from __future__ import annotations

import shlex

from click.testing import CliRunner

import _cli
from _archives import a_fixed_zip, tree
from _messages import error_line, renders, shown

HEADING = ("would replace … not from an extraction … nothing of it was extracted: move … away, or "
           "pull with --force to replace …")
MEMBERS = {"VOCdevkit/VOC2007/labels.txt": b"the archive's labels\n",
           "VOCdevkit/VOC2007/a.jpg": b"jpg", "VOCdevkit/VOC2007/b.jpg": b"jpeg"}
MINE = {"VOCdevkit/VOC2007/labels.txt": b"my precious labels",
        "VOCdevkit/VOC2007/b.jpg": b"mine"}


def _users_files(dest) -> None:
    for rel, data in MINE.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)


@renders(HEADING)
def test_pull_over_the_users_files(emulator, local_state, drive_env, fast_retries, tmp_path):
    emulator.add_file("VOC_datasets/VOC.zip", a_fixed_zip(MEMBERS))
    dest = tmp_path / "data"
    _users_files(dest)
    code, out, err = _cli.run("pull", "drive:VOC_datasets/VOC.zip", str(dest), "-x")
    assert code == 1
    line = error_line(err)
    assert line == (f"Error: VOC.zip would replace 2 files in {dest} that are not from an "
                    "extraction and hold other bytes, the first "
                    f"{dest / 'VOCdevkit/VOC2007/b.jpg'}; nothing of it was extracted: move them "
                    "away, or pull with --force to replace them")
    shown(HEADING, line)
    assert {k: v for k, v in tree(dest).items() if not k.startswith(".")} == MINE


def test_the_trainer_names_its_setting_and_the_command_that_replaces_them(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    import yaml

    from trainer.cli import cli as trainer_cli

    emulator.add_file("VOC_datasets/VOC.zip", a_fixed_zip(MEMBERS))
    dest = tmp_path / "data"
    _users_files(dest)
    (dest / "VOCdevkit/VOC2007/labels.txt").unlink()   # one file: "it"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"root": str(dest), "drive_zip": "drive:VOC_datasets/VOC.zip",
                 "keep_archive": False},
        "train": {"device": "cpu", "out_dir": str(tmp_path / "logs")}}))
    result = CliRunner().invoke(trainer_cli, ["train", "-c", str(cfg)])
    assert result.exit_code == 1, result.stderr
    command = shlex.join(["drivestage", "pull", "drive:VOC_datasets/VOC.zip", str(dest), "-x",
                          "--force", "--remove-archive"])
    # (after the download's progress bar, on its line)
    assert result.stderr[result.stderr.rindex("Error: "):].strip() == (
        f"Error: data.drive_zip: VOC.zip would replace 1 file in {dest} that is not from an "
        f"extraction and holds other bytes: {dest / 'VOCdevkit/VOC2007/b.jpg'}; nothing of it was "
        f"extracted: move it away, or replace it with `{command}`; then start again")
    assert (dest / "VOCdevkit/VOC2007/b.jpg").read_bytes() == b"mine"
