"""ux34: `trainer synth-data OUT` run again into the same OUT with fewer images (as one tries
the emulator walkthrough with a smaller set) left the earlier set's images and annotations
in VOCdevkit/ (in no split), and `--zip` packed them with the new set: the zip pushed to
"Drive" held a set the printed summary did not describe. Without `--zip`, the earlier zip
stayed beside the new set without a word."""
from __future__ import annotations

import zipfile

from click.testing import CliRunner


def _members(zip_path) -> list[str]:
    with zipfile.ZipFile(zip_path) as zf:
        return sorted(n for n in zf.namelist() if n.endswith((".jpg", ".xml")))


def test_a_smaller_set_written_again_replaces_the_earlier_one(tmp_path):
    from trainer.data.synth import make_synthetic_voc

    out = tmp_path / "synth"
    make_synthetic_voc(out, images=6, classes=2, image_size=(16, 24))
    (out / "VOCdevkit" / "VOC2007" / "notes.txt").write_text("mine")   # not synth-data's
    result = make_synthetic_voc(out, images=3, classes=2, image_size=(16, 24),
                                zip_path=out / "VOCdevkit.zip")
    voc = out / "VOCdevkit" / "VOC2007"
    ids = ["000001", "000002", "000003"]
    assert sorted(p.name for p in (voc / "JPEGImages").iterdir()) == [f"{i}.jpg" for i in ids]
    assert sorted(p.name for p in (voc / "Annotations").iterdir()) == [f"{i}.xml" for i in ids]
    assert _members(result.zip_path) == sorted(
        [f"VOCdevkit/VOC2007/JPEGImages/{i}.jpg" for i in ids]
        + [f"VOCdevkit/VOC2007/Annotations/{i}.xml" for i in ids])
    assert (voc / "notes.txt").read_text() == "mine"


def test_an_earlier_zip_left_without_zip_is_said(tmp_path):
    from trainer.cli import cli

    out = tmp_path / "synth"
    args = ["synth-data", str(out), "--images", "4", "--min-size", "16", "--max-size", "24"]
    assert CliRunner().invoke(cli, [*args, "--zip"]).exit_code == 0
    before = (out / "VOCdevkit.zip").read_bytes()
    result = CliRunner().invoke(cli, [*args[:3], "2", *args[4:]])
    assert result.exit_code == 0, result.output
    assert (out / "VOCdevkit.zip").read_bytes() == before   # left as it is
    assert result.stderr.splitlines()[-1] == (
        f"Warning: {out / 'VOCdevkit.zip'} is left as it was, and may hold the set written "
        "before; add --zip to write it again, or delete it")
