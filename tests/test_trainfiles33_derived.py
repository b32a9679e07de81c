"""trainfiles33: the trainer wrote its annotation lines into the dataset tree
(``data.root/annotations/<year>_<split>.txt``, or ``annotations.local/``). Since a pull
refuses to replace a file no extraction wrote (clobber32), a new version of
``data.drive_zip`` bringing such a path (a data root zipped whole) refused the next start:
the user had to run a ``--force`` command. The lines now live in the trainer's own folder,
``data.root/.drivestage-trainer/``, a name no archive member and no Drive item can take;
the files older versions wrote there are removed before the pull when they hold exactly
what the trainer writes now and no stamp records them (an archive's own is never touched)."""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import zipfile
from pathlib import Path

import pytest
import drivestage

CLASSES = ["circle", "square", "triangle"]
#: What a zipped data root's annotations held: the lines of the machine it was zipped on.
THEIRS = b"/content/data/VOCdevkit/VOC2007/JPEGImages/x.jpg 1,2,3,4,0\n"


def _zip(synth_voc, extra: dict[str, bytes]) -> bytes:
    """The dataset's zip (``VOCdevkit/...``) with ``extra`` members added."""
    from _archives import a_fixed_zip

    with zipfile.ZipFile(synth_voc.zip_path) as src:
        members = {i.filename: src.read(i) for i in src.infolist() if not i.is_dir()}
    return a_fixed_zip({**members, **extra})


def _replace_on_drive(path: str, data: bytes, tmp_path) -> None:
    """A new version of ``path`` on Drive under the same id."""
    store = drivestage.connect()
    old = store.resolve(path)
    local = tmp_path / "upload.bin"
    local.write_bytes(data)
    assert store.upload(str(local), store.resolve(path.rsplit("/", 1)[0]), old.name,
                        replace=old).id == old.id


_SETTINGS = {"data.drive_zip": "drive:VOC_datasets/VOC.zip", "data.train": "train",
             "data.val": "val", "data.classes": CLASSES, "train.epochs": 1,
             "train.freeze_epochs": 0}


def _config(tiny_config, **more):
    from trainer.config import load_config

    return load_config(tiny_config(**{**_SETTINGS, **more}))


def _old_trainers_start(cfg) -> dict[str, bytes]:
    """A start of the trainer before trainfiles33: the pull, then each split's lines
    written into ``data.root/annotations/`` (no archive held that path then)."""
    from trainer.data.voc import prepare_voc

    d = cfg.data
    drivestage.pull(d.drive_zip, d.root, extract=True, quiet=True)
    root = Path(d.root)
    for split in ("train", "val"):
        prepare_voc(root / "VOCdevkit", 2, CLASSES, root / "annotations", year="2007",
                    image_sets=(split,))
    return {s: (root / "annotations" / f"2007_{s}.txt").read_bytes() for s in ("train", "val")}


def test_a_new_version_bringing_the_old_trainers_lines_path_stages_and_loads(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path, caplog):
    """Before: ``Error: data.drive_zip: VOC.zip would replace 1 file in …/data that is not
    from an extraction …: …/annotations/2007_train.txt; … --force …``, exit 1 (the start
    through the CLI; in-process here: a training run takes 20 s on this machine)."""
    from trainer.data.dataset import YoloDataset
    from trainer.derived import FOLDER, lines_folder
    from trainer.staging import stage_data

    emulator.add_file("VOC_datasets/VOC.zip", _zip(synth_voc, {}))
    cfg = _config(tiny_config)
    old = _old_trainers_start(cfg)
    _replace_on_drive("VOC_datasets/VOC.zip",
                      _zip(synth_voc, {"annotations/2007_train.txt": THEIRS}), tmp_path)
    data = tmp_path / "data"

    with caplog.at_level(logging.INFO):
        spec = stage_data(cfg)

    assert (data / "annotations" / "2007_train.txt").read_bytes() == THEIRS  # v2's member
    assert not (data / "annotations" / "2007_val.txt").exists()   # the trainer's own: gone
    ours = lines_folder(str(data), str(data / "VOCdevkit"), CLASSES)
    # What the run reads: this machine's lines, as the old trainer wrote them.
    assert {s: (ours / f"2007_{s}.txt").read_bytes() for s in ("train", "val")} == old
    assert spec.train_lines == old["train"].decode().splitlines()
    assert f"removed {data / 'annotations' / '2007_val.txt'}: the trainer's annotation " \
        f"lines are in {ours / '2007_val.txt'} now" in caplog.text, caplog.text
    image, boxes = YoloDataset(spec.train_lines, 64, 3, train=False)[0]   # they load
    assert image.shape == (3, 64, 64) and boxes.shape[1] == 5


def test_the_trainer_writes_nothing_into_the_dataset_tree(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """A first start, then a new version that adds ``annotations/…`` (the data root zipped
    whole on another machine): the next start stages it. Before: refused."""
    from drivestage.paths import is_reserved
    from trainer.derived import FOLDER, lines_folder
    from trainer.staging import stage_data

    assert is_reserved(FOLDER)          # no member, no Drive item, no push: drivestage's rule
    emulator.add_file("VOC_datasets/VOC.zip", _zip(synth_voc, {}))
    cfg = _config(tiny_config)
    first = stage_data(cfg)
    data = tmp_path / "data"
    assert sorted(os.listdir(data)) == [".drivestage", FOLDER, "VOC.zip", "VOCdevkit"]

    _replace_on_drive("VOC_datasets/VOC.zip", _zip(synth_voc, {
        "annotations/2007_train.txt": THEIRS, "annotations/2007_val.txt": THEIRS}), tmp_path)
    again = stage_data(cfg)

    assert (data / "annotations" / "2007_train.txt").read_bytes() == THEIRS
    assert again.train_lines == first.train_lines == \
        (lines_folder(str(data), str(data / "VOCdevkit"), CLASSES) / "2007_train.txt"
         ).read_text().splitlines()
    assert again.train_lines[0].startswith(str(data.resolve() / "VOCdevkit"))


def test_an_old_lines_file_of_other_bytes_is_left_and_the_pull_refused_over_it(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """A file at the old path that is not what the trainer writes (edited by hand) may be
    the user's: never removed. The new version over it is refused, the user's bytes kept."""
    from drivestage.errors import UserFilesError
    from trainer.staging import stage_data

    emulator.add_file("VOC_datasets/VOC.zip", _zip(synth_voc, {}))
    cfg = _config(tiny_config, **{"data.keep_archive": False})
    _old_trainers_start(cfg)
    data = tmp_path / "data"
    mine = data / "annotations" / "2007_train.txt"
    edited = b"".join(mine.read_bytes().splitlines(keepends=True)[1:])   # a line removed
    mine.write_bytes(edited)
    _replace_on_drive("VOC_datasets/VOC.zip",
                      _zip(synth_voc, {"annotations/2007_train.txt": THEIRS}), tmp_path)

    with pytest.raises(UserFilesError) as caught:
        stage_data(cfg)

    command = shlex.join(["drivestage", "pull", "drive:VOC_datasets/VOC.zip", str(data), "-x",
                          "--force", "--remove-archive"])
    assert str(caught.value) == (
        f"data.drive_zip: VOC.zip would replace 1 file in {data} that is not from an "
        f"extraction and holds other bytes: {mine}; nothing of it was extracted: move it away, "
        f"or replace it with `{command}`; then start again")
    assert mine.read_bytes() == edited
    assert not (data / "annotations" / "2007_val.txt").exists()   # the trainer's own: gone


def test_lines_an_archive_holds_are_never_removed_even_when_they_are_the_trainers(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """A data root zipped whole on this very machine holds ``annotations/2007_train.txt``
    with exactly the lines the trainer writes: it is the archive's member (its stamp says
    so), left as it is, and the next start downloads nothing."""
    from trainer.data.voc import prepare_voc
    from trainer.staging import stage_data

    cfg = _config(tiny_config, **{"data.keep_archive": False})
    data = tmp_path / "data"
    with zipfile.ZipFile(synth_voc.zip_path) as zf:   # the lines of this very machine
        zf.extractall(data)
    prepare_voc(data / "VOCdevkit", 2, CLASSES, data / "annotations", image_sets=("train",))
    lines = (data / "annotations" / "2007_train.txt").read_bytes()
    shutil.rmtree(data)
    emulator.add_file("VOC_datasets/VOC.zip",
                      _zip(synth_voc, {"annotations/2007_train.txt": lines}))
    stage_data(cfg)
    emulator.clear_requests()

    stage_data(cfg)

    assert (data / "annotations" / "2007_train.txt").read_bytes() == lines
    assert emulator.api_calls("media.download") == 0


def test_lines_an_old_version_wrote_beside_an_archives_own_are_retired_too(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """A zipped data root holding ``annotations/2007_train.txt``: older versions wrote this
    machine's lines to ``annotations.local/``. A version zipped again brings that path too:
    the start stages it (before: refused over the trainer's own file)."""
    from trainer.data.voc import prepare_voc
    from trainer.staging import stage_data

    emulator.add_file("VOC_datasets/VOC.zip",
                      _zip(synth_voc, {"annotations/2007_train.txt": THEIRS}))
    cfg = _config(tiny_config)
    drivestage.pull(cfg.data.drive_zip, cfg.data.root, extract=True, quiet=True)
    data = tmp_path / "data"
    prepare_voc(data / "VOCdevkit", 2, CLASSES, data / "annotations.local",
                image_sets=("train",))       # where the older version wrote, beside the member
    _replace_on_drive("VOC_datasets/VOC.zip", _zip(synth_voc, {
        "annotations/2007_train.txt": THEIRS, "annotations.local/2007_train.txt": THEIRS}),
        tmp_path)

    stage_data(cfg)

    assert (data / "annotations" / "2007_train.txt").read_bytes() == THEIRS
    assert (data / "annotations.local" / "2007_train.txt").read_bytes() == THEIRS
