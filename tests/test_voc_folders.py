"""prepare-voc on VOC folders as other tools leave them: image files with other extensions or
letter cases, XML with a namespace, a split that lists an id twice."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from _messages import log_text
from test_attack_data3 import _lines, _voc


def test_images_with_other_extensions_and_letter_cases_are_found_and_decode(tmp_path):
    from trainer.data.images import read_image
    from trainer.data.voc import prepare_voc

    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)], "b": [("dog", 3, 4, 30, 40)],
                          "c": [("dog", 5, 6, 40, 44)], "d": [("dog", 1, 1, 9, 9)]})
    jpeg = voc / "JPEGImages"
    pixels = np.full((48, 64, 3), 90, np.uint8)
    (jpeg / "a.jpg").rename(jpeg / "a.Jpg")                 # a camera's or Windows' case
    for image_id, ext in (("b", ".webp"), ("c", ".TIFF")):
        (jpeg / f"{image_id}.jpg").unlink()
        assert cv2.imwrite(str(jpeg / f"{image_id}{ext.lower()}"), pixels)
        (jpeg / f"{image_id}{ext.lower()}").rename(jpeg / f"{image_id}{ext}")
    cv2.imwrite(str(jpeg / "d.png"), pixels)                # two files: .jpg is preferred
    report = prepare_voc(tmp_path, 2, ["dog"], tmp_path, image_sets=("train",))
    assert report.missing_images == []
    assert _lines(tmp_path) == [f"{(jpeg / 'a.Jpg').resolve()} 1,2,20,30,0",
                                f"{(jpeg / 'b.webp').resolve()} 3,4,30,40,0",
                                f"{(jpeg / 'c.TIFF').resolve()} 5,6,40,44,0",
                                f"{(jpeg / 'd.jpg').resolve()} 1,1,9,9,0"]
    for name in ("a.Jpg", "b.webp", "c.TIFF"):
        assert read_image(jpeg / name).shape == (48, 64, 3)


def test_an_annotation_with_a_namespace_keeps_its_objects(tmp_path):
    from trainer.data.devkit import parse_voc_xml

    xml = tmp_path / "a.xml"
    xml.write_text('<annotation xmlns="http://example.com/voc"><size><width>64</width>'
                   "<height>48</height></size><object><name>dog</name><bndbox><xmin>1</xmin>"
                   "<ymin>2</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object></annotation>")
    size, objects = parse_voc_xml(xml)
    assert size == (48, 64)
    assert [(o.name, o.box, o.difficult) for o in objects] == [("dog", (1.0, 2.0, 20.0, 30.0), False)]


def test_an_id_listed_twice_in_a_split_is_written_once_with_a_warning(tmp_path, caplog):
    from trainer.data.voc import prepare_voc

    voc = _voc(tmp_path, {"a": [("dog", 1, 2, 20, 30)], "b": [("dog", 3, 4, 30, 40)]},
               split=b"a\nb\na\n")
    with caplog.at_level(logging.WARNING, logger="trainer"):
        report = prepare_voc(tmp_path, 2, ["dog"], tmp_path, image_sets=("train",))
    jpeg = Path(voc / "JPEGImages")
    assert _lines(tmp_path) == [f"{(jpeg / 'a.jpg').resolve()} 1,2,20,30,0",
                                f"{(jpeg / 'b.jpg').resolve()} 3,4,30,40,0"]
    assert report.class_counts == {"dog": 2}
    assert "1 id appears more than once in the train split; each is written once" in \
        log_text(caplog.records)
