"""attack52: a Drive sharing link where the trainer takes a ``drive:`` path.

README: "a sharing link works as SRC as it is" (``drivestage pull "https://drive.google.com/
file/d/<ID>/view?usp=sharing" ./data``), so a Colab user pastes one into ``data.drive_zip``,
``model.weights`` or ``--weights`` too. The trainer took it for a local path:
``data.drive_zip`` was never pulled (then ``no VOCdevkit was found … (set data.voc_root or
data.drive_zip)``, with it set), ``model.weights`` said ``file not found: https://…; a file on
Google Drive is written drive:https://…`` (a spelling that is no path), and ``trainer predict
--weights <link>`` said ``file '…' does not exist``. A link is now what pull makes of it,
``drive:id:<ID>[:<RESOURCE_KEY>]``."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

LINK = "https://drive.google.com/file/d/{id}/view?usp=sharing"


@pytest.mark.parametrize("key", ["data.drive_zip", "model.weights", "drive.logs"])
def test_a_link_in_the_config_is_the_drive_id_it_names(key):
    """On main 8704ac72 the link was kept as a local path."""
    from trainer.config import load_config

    cfg = load_config(None, [f"{key}=https://drive.google.com/file/d/1AbC-d_E/view?usp=sharing"
                             "&resourcekey=0-XyZ"])
    section, name = key.split(".")
    assert getattr(getattr(cfg, section), name) == "drive:id:1AbC-d_E:0-XyZ"


def test_a_link_that_names_no_file_is_one_line():
    from trainer.config import load_config
    from trainer.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^config key 'model.weights' \(--set\): "
                                          r"'https://drive.google.com/drive/my-drive' is a "
                                          r"Google address but not a link to a Drive file"):
        load_config(None, ["model.weights=https://drive.google.com/drive/my-drive"])


def test_predict_pulls_the_weights_a_link_names(emulator, drive_env, local_state, tmp_path):
    """On main 8704ac72: ``Invalid value for '--weights': file '…' does not exist``, exit 2."""
    import cv2
    import numpy as np
    import torch

    from _cli import ok
    from trainer.cli import cli
    from trainer.model import YoloV4Tiny

    (tmp_path / "w").mkdir()
    torch.save(YoloV4Tiny(num_classes=2, width=0.25).state_dict(), tmp_path / "w" / "t.pth")
    ok("push", str(tmp_path / "w"), "drive:W")
    (entry,) = [e for e in emulator.store.all_files() if e["title"] == "t.pth"]
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), np.zeros((40, 40, 3), np.uint8))
    res = CliRunner().invoke(cli, ["predict", "--weights", LINK.format(id=entry["id"]),
                                   "--source", str(image), "--out", str(tmp_path / "out"),
                                   "--input-size", "64"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(tmp_path / "out" / "detections.json")
    assert (tmp_path / "out" / "weights" / "t.pth").read_bytes() == \
        (tmp_path / "w" / "t.pth").read_bytes()
