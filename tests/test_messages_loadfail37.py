"""The troubleshooting page's loadfail37 message, made to happen (tests/_messages.py): a
verified checkpoint that this torch cannot read (a newer torch's zip format, its sidecar
vouching for those bytes) stops the search for the newest checkpoint."""
from __future__ import annotations

import pytest

from _messages import error_text, renders, shown
from test_loadfail37_find import _newer_torch_format, _two_epochs
from trainer import checkpoint as ckpt
from trainer.errors import LoadFailedError

FAILED_HERE = ("cannot resume from …: loading it failed on this machine (…), although its bytes "
               "are those its sidecar vouches for")


@renders(FAILED_HERE)
def test_a_verified_checkpoint_this_torch_cannot_read(tiny_config, tmp_path):
    logs = tmp_path / "logs"
    path = _two_epochs(tiny_config, logs)
    for name in ("epoch_002.pt", "last.pt"):
        _newer_torch_format(str(logs / name))
    with pytest.raises(LoadFailedError) as stopped:
        ckpt.find_latest(str(logs))
    assert stopped.value.exit_code == 1 and stopped.value.path == path
    shown(FAILED_HERE, error_text(stopped.value))
