"""attackstream40: weights on Drive that Drive flagged as malware or spam (403
``cannotDownloadAbusiveFile``: its scanner flags files it cannot tell, a pickle-based ``.pt``
among them), given to a trainer command as ``--weights drive:…``.

attacktrain40 made a resume fetch the run's own flagged checkpoint acknowledging the flag. The
other doors that pull weights (``predict``/``export-onnx``/``eval --weights``,
``model.weights``) still stopped with drivestage pull's advice, ``pull again with
--acknowledge-abuse``: an option none of them has. They now pull it acknowledging the flag,
with a warning (weights load as tensors only); a file this account does not own is still
refused by Drive, with its line that says to ask the owner.
"""
from __future__ import annotations

import hashlib

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from trainer.cli import cli
from trainer.model import YoloV4Tiny


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "best.pt"
    torch.save(YoloV4Tiny(num_classes=2).state_dict(), path)
    return path.read_bytes()


def _predict(tmp_path, spec: str):
    image = tmp_path / "a.jpg"
    Image.new("RGB", (64, 48), (90, 120, 30)).save(image)
    return CliRunner().invoke(cli, ["predict", "--weights", spec, "--source", str(image),
                                    "--out", str(tmp_path / "out"), "--input-size", "64"])


def test_predict_pulls_its_own_flagged_weights_acknowledging_the_flag(
        emulator, drive_env, tmp_path, weights):
    emulator.add_file("Models/best.pt", weights, abusive=True)
    result = _predict(tmp_path, "drive:Models/best.pt")
    assert result.exit_code == 0, result.output
    assert ("WARNING trainer.staging: Drive flagged drive:Models/best.pt (--weights) as "
            "malware or spam; it is pulled acknowledging that (acknowledgeAbuse, which Drive "
            "allows the file's owner): its bytes are md5-checked and loaded as tensors "
            "only\n") in result.output
    assert "--acknowledge-abuse" not in result.output
    assert (tmp_path / "out" / "a.jpg").exists()
    pulled = [p for p in tmp_path.rglob("best.pt")]
    assert [hashlib.md5(p.read_bytes()).hexdigest() for p in pulled] == [
        hashlib.md5(weights).hexdigest()]


def test_flagged_weights_of_another_owner_are_still_refused_with_drives_line(
        emulator, drive_env, tmp_path, weights):
    fid = emulator.add_file("Shared/best.pt", weights, abusive=True, owner="them@x.org",
                            shared_with_me="reader")
    result = _predict(tmp_path, f"drive:id:{fid}")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("Error: ")
    assert ("Drive flagged this file as malware or spam and refused --acknowledge-abuse "
            in result.output)
    assert "Ask the owner to download it" in result.output
    assert not list(tmp_path.rglob("best.pt"))
