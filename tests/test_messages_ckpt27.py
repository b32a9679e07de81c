"""Hostile checkpoints given to ``trainer train --resume PATH`` (ckpt27, found by
attackdata27): a checkpoint is anybody's file (Drive, a shared folder), loaded with
``weights_only=True``, so no code ran; but a pickled object was refused with torch's eight
lines advising ``weights_only=False``, a zip bomb was inflated, and shared references
(pickle's memo) were spelt out. Real torch files, the CLI in this process."""
from __future__ import annotations

import os
import zipfile

import torch

from _messages import renders, shown
from test_attackdata27_images import _in_thread
from test_attackdata27_pickles import _Exploit, _shared
from test_messages_train import _state, trainer
from drivestage.sizes import format_size
from trainer import checkpoint as ckpt


@renders("holds a pickled Python object (…), not only tensors; such objects are never loaded")
def test_resume_from_a_checkpoint_holding_a_pickled_object(tiny_config, tmp_path):
    """No code runs, and the refusal is one line that never advises weights_only=False."""
    marker = tmp_path / "pwned"
    path = tmp_path / "last.pt"
    torch.save(_state("r1", 1, 2, x=_Exploit(str(marker))), path)
    code, line = trainer("train", "-c", tiny_config(), "--resume", str(path))
    assert code == 1
    assert line == (f"Error: {path} holds a pickled Python object (posix.system), not only "
                    "tensors; such objects are never loaded (a file from anywhere could run "
                    "code): resume from a checkpoint this trainer wrote")
    assert "weights_only" not in line and not marker.exists()
    shown("holds a pickled Python object (…), not only tensors; such objects are never loaded",
          line)


def _deflated(plain, bomb) -> None:
    """``bomb``: ``plain``'s zip with every record compressed (torch.load inflates them)."""
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(bomb, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename),
                          compress_type=zipfile.ZIP_DEFLATED)


@renders("on disk (a zip bomb?); PyTorch writes its files uncompressed")
def test_resume_from_a_checkpoint_that_inflates_a_thousandfold(tiny_config, tmp_path):
    """A 20 MB checkpoint in some kilobytes: refused from the zip's directory, before loading
    (a 20 MB file so made is 20 GB in memory)."""
    plain = tmp_path / "plain.pt"
    torch.save(_state("r1", 1, 2, pad=torch.zeros(5_000_000)), plain)
    bomb = tmp_path / "last.pt"
    _deflated(plain, bomb)
    assert os.path.getsize(bomb) < 100_000
    unpacked = sum(i.file_size for i in zipfile.ZipFile(bomb).infolist())
    code, line = trainer("train", "-c", tiny_config(), "--resume", str(bomb))
    assert code == 1
    assert line == (f"Error: {bomb} would unpack to {format_size(unpacked)} from "
                    f"{format_size(os.path.getsize(bomb))} on disk (a zip bomb?); PyTorch writes "
                    "its files uncompressed: resume from a checkpoint this trainer wrote")
    shown("on disk (a zip bomb?); PyTorch writes its files uncompressed", line)


@renders("values besides its tensors (one list referenced over and over?)")
def test_resume_from_a_checkpoint_of_shared_references(tiny_config, tmp_path):
    """A model signature of 10**7 strings from seven lists (under 2 kB): the refusal of
    another model shape spelt it out (measured: a 72 MB error line, 1.3 GB of memory; at
    10**9, a hang and an out-of-memory kill)."""
    path = tmp_path / "last.pt"
    torch.save(_state("r1", 1, 2, signature={"anchors_mask": _shared(6)}), path)
    assert os.path.getsize(path) < 2000
    box: list = []
    finished, exc = _in_thread(lambda: box.append(
        trainer("train", "-c", tiny_config(), "--resume", str(path))))
    assert finished and exc is None, exc
    code, line = box[0]
    assert code == 1 and len(line) < 500, len(line)
    assert line == (f"Error: {path} holds more than 1000000 values besides its tensors "
                    "(one list referenced over and over?); it is no checkpoint this trainer "
                    "wrote: resume from another")
    shown("values besides its tensors (one list referenced over and over?)", line)


def test_a_checkpoint_of_the_trainer_is_far_below_the_bound(tiny_config, tmp_path):
    """The bound leaves room: a real checkpoint (model, EMA, optimizer, history of 10 000
    epochs) loads."""
    from test_trainer22_hostile import _small_run
    from trainer.saving import snapshot

    state = snapshot(_small_run(tiny_config, tmp_path / "run"))
    state["history"] = [{"epoch": e, "train_loss": 1.0, "map50": 0.5, "lr": 0.01}
                        for e in range(10_000)]
    path = ckpt.save_checkpoint(state, str(tmp_path / "last.pt"))
    assert len(ckpt.load_checkpoint(path)["history"]) == 10_000
