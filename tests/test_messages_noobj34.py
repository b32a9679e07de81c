"""noobj34: a class list matching none of the dataset's <name> tags (ux34: configs/voc.yaml's
20 VOC classes over another dataset) only warned "no objects of the given classes were
found", then trained for hours on images without a box (mAP 0). Refused now, before the
model is built, in one line naming data.train and the classes."""
from __future__ import annotations

from click.testing import CliRunner

from _messages import error_line, renders, shown
from trainer.cli import cli

HEADING = ("none of its … images holds an object of the … classes of data.classes (…), so "
           "there is nothing to train on")


@renders(HEADING)
def test_classes_matching_no_annotation_refuse_the_run(synth_voc, tiny_config, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("zebra\ngiraffe\n")
    cfg = tiny_config(**{"data.classes": str(classes), "data.voc_root": str(synth_voc.voc_root),
                         "data.train": "train", "data.val": "val"})
    r = CliRunner().invoke(cli, ["train", "-c", cfg])
    assert r.exit_code == 1, (r.exit_code, r.output, r.exception)
    line = error_line(r.stderr)
    shown(HEADING, line)
    assert line.startswith("Error: data.train train: none of its "), line
    assert line.endswith(
        " images holds an object of the 2 classes of data.classes (zebra, giraffe), so there is "
        "nothing to train on; list the classes the annotations' <name> tags use (a warning "
        "above names those left out)"), line
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").rglob("*.pt"))


def test_one_object_of_the_classes_is_enough(tmp_path):
    from trainer.staging import _refuse_no_objects

    _refuse_no_objects(None, ["a"], ["x.jpg", "y.jpg 1,2,3,4,0"])   # returns: one box
