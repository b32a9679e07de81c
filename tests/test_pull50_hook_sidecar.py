"""pull50: the trainer's sync (``hooks.CheckpointSync``) never writes over a sidecar it could
not read.

``on_save`` writes a sidecar for a checkpoint that has none vouching for it; one it could
not read (EACCES, EIO) was taken for none and replaced (atomic rename), the trainer's own
sidecar lost, and the checkpoint then mirrored beside the new one. Push holds a checkpoint
whose sidecar it cannot read (pushblock49: :mod:`drivestage.sidecar_unread`); the sync now
leaves that sidecar as it is, says one line, and its mirror holds the checkpoint the same
way. The sync runs in a forked child without root's reads (tests/_no_root_reads.py), the
sidecar mode 000.
"""
from __future__ import annotations

import logging
import os
import sys

import pytest

from _checkpoints import save
from _drive_state import live_md5s
from _messages import renders, shown
from _no_root_reads import in_a_child

T0 = 1764600000.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="capabilities: Linux")
@renders("could not read the sidecar … not written over")
def test_the_sync_never_writes_over_a_sidecar_it_could_not_read(
        emulator, drive_env, local_state, fast_retries, tmp_path):
    src = tmp_path / "run"
    save(str(src), "epoch_001", 1, T0)
    save(str(src), "epoch_002", 2, T0 + 60)
    side = src / "epoch_002.json"
    before = side.read_bytes()
    os.chmod(side, 0)

    def sync() -> list:
        from drivestage.errors import MirrorError
        from drivestage.hooks import CheckpointSync

        said: list = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda r: said.append(r.getMessage())    # type: ignore[method-assign]
        logging.getLogger("drivestage").addHandler(handler)
        hook = CheckpointSync("drive:runs/a", local_dir=str(src))
        hook.on_save(str(src / "epoch_002.pt"), epoch=2, metrics={"loss": 1.0})
        try:
            hook.on_train_end(timeout=60)
        except MirrorError:
            pass    # (the mirror's failure: the push's own lines, pushblock49's tests)
        return said

    said = in_a_child(sync)
    assert side.read_bytes() == before and os.stat(side).st_mode & 0o777 == 0
    # The pair before it is mirrored; epoch_002.pt waits with its sidecar.
    assert set(live_md5s(emulator, "runs/a")) == {"epoch_001.pt", "epoch_001.json"}
    shown("could not read the sidecar … not written over", said[0])
    assert said[0] == (
        f"could not read the sidecar {side} (Permission denied): not written over, and "
        f"{src}/epoch_002.pt is not mirrored until it can be read (a checkpoint goes only with "
        f"its sidecar)"), said
