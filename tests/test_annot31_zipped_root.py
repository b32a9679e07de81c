"""A dataset archive made by zipping a staged data root (``zip -r data.zip data``) holds the
trainer's own ``annotations/<year>_<split>.txt`` (another machine's image paths). The trainer
wrote over that member at every start, so the next start's pull found it changed and put it
back: with ``data.keep_archive: false`` by downloading the whole archive again, at every
start. Now an archive member at that path is left as it is and the trainer's lines for this
machine go to its own folder (``.drivestage-trainer/annotations/``, since trainfiles33: out of
the dataset's tree whatever the archive holds)."""
from __future__ import annotations

import logging
import os
import zipfile

import pytest

CLASSES = ["circle", "square", "triangle"]
#: What the zipped data root's annotations held: the lines of the machine it was zipped on.
THEIRS = {f"annotations/2007_{s}.txt": f"/content/data/VOCdevkit/VOC2007/JPEGImages/{s}.jpg "
                                       "1,2,3,4,0\n".encode() for s in ("train", "val")}


def _zipped_root(synth_voc, path) -> str:
    """The dataset's VOCdevkit and the annotations folder, zipped as ``zip -r`` of a data
    root the trainer had staged."""
    devkit = synth_voc.zip_path
    with zipfile.ZipFile(devkit) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        for name, data in THEIRS.items():
            out.writestr(name, data)
    return str(path)


@pytest.mark.parametrize("keep", [False, True])
def test_a_zipped_data_root_is_not_fetched_again_at_each_start(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path, caplog, keep):
    from trainer.config import load_config
    from trainer.derived import lines_folder
    from trainer.staging import stage_data

    emulator.add_file("VOC_datasets/data.zip", _zipped_root(synth_voc, tmp_path / "data.zip"))
    cfg = load_config(tiny_config(**{
        "data.drive_zip": "drive:VOC_datasets/data.zip", "data.keep_archive": keep,
        "data.train": "train", "data.val": "val", "data.classes": CLASSES}))
    first = stage_data(cfg)
    emulator.clear_requests()
    caplog.clear()

    with caplog.at_level(logging.INFO):
        again = stage_data(cfg)

    data = tmp_path / "data"
    assert emulator.api_calls("media.download") == 0
    assert "put back" not in caplog.text, caplog.text
    for name, theirs in THEIRS.items():      # the archive's member, as it holds it
        assert (data / name).read_bytes() == theirs
    # This machine's lines, read from the trainer's folder, and the log says where they are.
    ours = lines_folder(str(data), str(data / "VOCdevkit"), CLASSES) / "2007_train.txt"
    assert again.train_lines == first.train_lines == ours.read_text().splitlines()
    assert again.train_lines[0].startswith(str(data.resolve() / "VOCdevkit")), again.train_lines[0]
    assert f"annotation lines in {ours}" in caplog.text, caplog.text


def test_the_readme_recipe_gets_its_lines_out_of_the_dataset_tree(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """``zip -r VOC.zip VOCdevkit`` holds no annotations/: the lines go to the trainer's
    folder all the same (trainfiles33; they were in ``data.root/annotations/``)."""
    from trainer.config import load_config
    from trainer.derived import lines_folder
    from trainer.staging import stage_data

    emulator.add_file("VOC_datasets/synth.zip", str(synth_voc.zip_path))
    cfg = load_config(tiny_config(**{
        "data.drive_zip": "drive:VOC_datasets/synth.zip",
        "data.train": "train", "data.val": "val", "data.classes": CLASSES}))
    spec = stage_data(cfg)

    data = tmp_path / "data"
    assert spec.val_lines == \
        (lines_folder(str(data), str(data / "VOCdevkit"), CLASSES) / "2007_val.txt"
         ).read_text().splitlines()
    assert not (data / "annotations").exists()


def test_an_archive_pulled_into_a_folder_above_the_data_root_counts_too(
        emulator, local_state, drive_env, tmp_path):
    """``pull drive:d/all.zip /content -x`` holding ``data/annotations/…`` with data.root
    ``/content/data``: the member is seen from data.root (its stamp is in the folder above),
    so the old lines' retirement leaves it."""
    import drivestage
    from _archives import a_fixed_zip
    from trainer.derived import _recorded

    emulator.add_file("d/all.zip", a_fixed_zip({"data/annotations/2007_train.txt": b"x\n",
                                                "data/other.txt": b"y"}))
    drivestage.pull("drive:d/all.zip", str(tmp_path), extract=True, quiet=True)

    assert _recorded(str(tmp_path / "data"), ["annotations/2007_train.txt", "annotations/x"]) \
        == {"annotations/2007_train.txt"}


def test_the_old_lines_are_looked_for_in_every_folder_older_versions_wrote(tmp_path):
    from trainer.derived import old_lines

    for folder in ("annotations", "annotations.local", "annotations.local2", "annotationsx"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "2007_train.txt").write_text("l\n")
    (tmp_path / "annotations" / "2007_val.txt").symlink_to("2007_train.txt")  # not written

    assert old_lines(str(tmp_path), ["2007_train.txt", "2007_val.txt"]) == [
        tmp_path / f / "2007_train.txt"
        for f in ("annotations", "annotations.local", "annotations.local2")]
