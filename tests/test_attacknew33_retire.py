"""The removal of the annotation lines older trainers wrote into the dataset's tree
(:func:`trainer.derived.retire`, trainfiles33), attacked (attacknew33): it must never remove
a file that is not the trainer's."""
from __future__ import annotations

from pathlib import Path

import drivestage
from test_trainfiles33_derived import _config, _old_trainers_start, _replace_on_drive, _zip


def test_lines_behind_a_linked_annotations_folder_are_left(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """``data/annotations`` a link to a folder of the user's elsewhere (a shared folder, one
    on the Drive mount): the older trainer wrote its lines through it, and the start removed
    them there, outside data.root, in a folder the trainer never made (a link is the user's
    doing, as the module says of a file that is one)."""
    from trainer.staging import stage_data

    emulator.add_file("VOC_datasets/VOC.zip", _zip(synth_voc, {}))
    cfg = _config(tiny_config)
    theirs = tmp_path / "shared" / "annotations"
    theirs.mkdir(parents=True)
    data = Path(cfg.data.root)
    data.mkdir(parents=True, exist_ok=True)
    (data / "annotations").symlink_to(theirs, target_is_directory=True)
    old = _old_trainers_start(cfg)       # (written through the link)

    stage_data(cfg)

    assert {s: (theirs / f"2007_{s}.txt").read_bytes() for s in ("train", "val")} == old


def test_an_archives_member_a_pull_adopted_meanwhile_is_not_removed(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """Two starts on one data.root at once (a second run, another machine's on a shared
    disk): while this one made the lines to compare with (a second for VOC), the other's
    pull of a new version bringing that very path with those very bytes (a data root zipped
    whole on a machine like this one) adopted the old file as its member and stamped it.
    The stamps read before the compare did not list it: the archive's member was removed,
    its stamp saying it is there."""
    from drivestage import stamps
    from trainer import derived
    from trainer.staging import _write_lines, _voc_and_names

    emulator.add_file("VOC_datasets/VOC.zip", _zip(synth_voc, {}))
    cfg = _config(tiny_config)
    old = _old_trainers_start(cfg)
    _replace_on_drive("VOC_datasets/VOC.zip",
                      _zip(synth_voc, {"annotations/2007_train.txt": old["train"]}), tmp_path)
    root = cfg.data.root
    voc_root, names = _voc_and_names(cfg)

    def write(name: str) -> Path:   # the compare's lines; the other start's pull meanwhile
        drivestage.pull(cfg.data.drive_zip, root, extract=True, quiet=True)
        return _write_lines(cfg, voc_root, names, name[len("2007_"):-len(".txt")])

    found = derived.old_lines(root, ["2007_train.txt"])
    assert found == [Path(root) / "annotations" / "2007_train.txt"]
    derived.retire(root, found, write)

    assert stamps.recorded(root, ["annotations/2007_train.txt"])
    assert (Path(root) / "annotations" / "2007_train.txt").read_bytes() == old["train"]


def test_a_file_the_user_pulled_from_drive_into_the_old_folder_is_left(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """The user's own lines kept on Drive (written on a machine with the same paths: every
    Colab VM has /content/data), pulled with ``drivestage pull drive:mine/2007_train.txt
    data/annotations``: a download, its stamp beside it, and exactly what the trainer
    writes. The start removed it (no archive lists it), and it was pulled again and
    removed again."""
    from trainer.staging import stage_data

    emulator.add_file("VOC_datasets/VOC.zip", _zip(synth_voc, {}))
    cfg = _config(tiny_config)
    old = _old_trainers_start(cfg)
    annotations = Path(cfg.data.root) / "annotations"
    (annotations / "2007_train.txt").unlink()
    emulator.add_file("mine/2007_train.txt", old["train"])
    drivestage.pull("drive:mine/2007_train.txt", str(annotations), quiet=True)

    stage_data(cfg)

    assert (annotations / "2007_train.txt").read_bytes() == old["train"]
    assert not (annotations / "2007_val.txt").exists()   # the trainer's own: gone


def test_an_old_lines_file_with_another_name_elsewhere_is_left(
        emulator, local_state, drive_env, synth_voc, tiny_config, tmp_path):
    """``ln data/annotations/2007_train.txt ~/keep/train.txt``: the file has a second name
    (a hard link: the user's doing, never the trainer's, which writes a new file each time).
    The start removed the name in the dataset's tree, which the user made, as its own."""
    import os

    from trainer.staging import stage_data

    emulator.add_file("VOC_datasets/VOC.zip", _zip(synth_voc, {}))
    cfg = _config(tiny_config)
    old = _old_trainers_start(cfg)
    annotations = Path(cfg.data.root) / "annotations"
    os.link(annotations / "2007_train.txt", tmp_path / "train.txt")

    stage_data(cfg)

    assert (annotations / "2007_train.txt").read_bytes() == old["train"]
    assert os.path.samefile(annotations / "2007_train.txt", tmp_path / "train.txt")
    assert not (annotations / "2007_val.txt").exists()   # the trainer's own: gone
