"""``~`` in the trainer's path settings is the home folder, as in a shell (attacknew33).

``data.root: ~/data`` staged the dataset into ``$HOME/data`` (drivestage expands ``~``) while
the trainer looked for it in ``./~/data`` and said no VOCdevkit was found "(set
data.voc_root or data.drive_zip)" though drive_zip was set; ``train.out_dir: ~/runs/a``
made a folder named ``~`` in the working folder."""
from __future__ import annotations

import os

from trainer.config import load_config


def test_a_home_folder_in_yaml_and_in_set_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home = os.path.expanduser("~")
    conf = tmp_path / "c.yaml"
    conf.write_text("data:\n  root: ~/data\n  drive_zip: drive:VOC.zip\n"
                    "train:\n  out_dir: ~/runs/a\n")
    cfg = load_config(str(conf), ["data.voc_root=~/voc/VOCdevkit", "model.weights=~/w.pth"])
    assert (cfg.data.root, cfg.train.out_dir, cfg.data.voc_root, cfg.model.weights) == (
        f"{home}/data", f"{home}/runs/a", f"{home}/voc/VOCdevkit", f"{home}/w.pth")
    assert cfg.data.drive_zip == "drive:VOC.zip" and cfg.data.train == "train"
