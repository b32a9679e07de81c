"""keeplocal25's messages (docs/troubleshooting.md), each made to happen by the real code."""
from __future__ import annotations

import errno
import logging
import os

from _messages import renders, shown
from test_keeplocal25 import _save_epochs, _saver


@renders("could not remove an older epoch file from … (train.keep_local)")
def test_the_warning_when_an_older_epoch_file_cannot_be_removed(tiny_config, tmp_path, caplog,
                                                               monkeypatch):
    """The run folder refuses the removal (a folder another user owns, a read-only mount:
    here the rename is refused as such a folder refuses it): one warning, training goes on,
    every file stays."""
    logs = tmp_path / "logs"
    run, writer, saver = _saver(tiny_config, logs, 1)
    real = os.replace

    def refused(src, dst, *args, **kwargs):
        if os.path.basename(str(src)).startswith("epoch_"):
            raise PermissionError(errno.EACCES, "Permission denied", str(src))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", refused)
    with caplog.at_level(logging.WARNING):
        _save_epochs(run, saver, 1, 2)
        writer.close()
    said = [r.getMessage() for r in caplog.records if "train.keep_local" in r.getMessage()]
    assert said, caplog.text
    shown("could not remove an older epoch file from … (train.keep_local)", said[0])
    assert {"epoch_001.pt", "epoch_002.pt"} <= set(os.listdir(logs))
