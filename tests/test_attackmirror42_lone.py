"""attackmirror42: a checkpoint alone on Drive (trainer.drive_lone) is a file from anywhere:
a resume with nothing else takes it up. One whose pickle holds code (os.system, in torch's
own zip format or as a bare pickle) is read as weights only: refused, never run, said, Drive
keeps it, nothing left in the run folder, and the run starts fresh."""
from __future__ import annotations

import io
import logging
import os
import pickle
import zipfile
from types import SimpleNamespace

import pytest


class _Code:
    def __init__(self, mark: str) -> None:
        self.mark = mark

    def __reduce__(self):
        return (os.system, (f"touch {self.mark}",))


def _torch_zip(obj) -> bytes:
    """torch.save's zip of a checkpoint, its data.pkl replaced by ``obj`` pickled."""
    import torch

    buf = io.BytesIO()
    torch.save({"model": {}}, buf)
    src, out = zipfile.ZipFile(io.BytesIO(buf.getvalue())), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            z.writestr(info, pickle.dumps(obj, protocol=2)
                       if info.filename.endswith("data.pkl") else src.read(info))
    return out.getvalue()


@pytest.mark.parametrize("form", ["torch zip", "bare pickle"])
def test_a_lone_checkpoint_on_drive_with_code_in_its_pickle_is_never_run(
        emulator, drive_env, local_state, tmp_path, caplog, form):
    from trainer.drive import DriveFolder
    from trainer.resume import _decide

    mark = tmp_path / "ran"
    code = _Code(str(mark))
    emulator.add_file("runs/a/epoch_001.pt",
                      _torch_zip(code) if form == "torch zip" else pickle.dumps(code, protocol=2))
    logs = tmp_path / "logs"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with caplog.at_level(logging.INFO, logger="trainer"):
        start = _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert not mark.exists()
    assert start.path is None
    assert "drive:runs/a/epoch_001.pt has no sidecar on Drive and is no checkpoint of this " \
           "trainer; Drive keeps it as it is" in caplog.text
    assert list(logs.iterdir()) == []
    assert [f["title"] for f in emulator.files() if not f["labels"]["trashed"]
            and not f["mimeType"].endswith(".folder")] == ["epoch_001.pt"]
