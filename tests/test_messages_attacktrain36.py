"""The troubleshooting page's attacktrain36 message, made to happen (tests/_messages.py): a
checkpoint written by a newer trainer."""
from __future__ import annotations

import pytest
import torch

from _messages import error_text, renders, shown
from trainer import checkpoint as ckpt
from trainer.errors import NewerCheckpointError

NEWER = "was written by a newer trainer (format …); upgrade trainer to resume from it"


@renders(NEWER)
def test_a_checkpoint_of_a_newer_trainer(tmp_path):
    path = tmp_path / "last.pt"
    # (A newer layout may lack keys this trainer requires: the format is looked at first.)
    torch.save({"format_version": ckpt.FORMAT_VERSION + 1, "weights": {}}, path)
    with pytest.raises(NewerCheckpointError) as refused:
        ckpt.load_checkpoint(str(path))
    assert refused.value.exit_code == 1
    shown(NEWER, error_text(refused.value))
