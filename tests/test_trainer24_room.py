"""trainer24: the room check counts the epoch files a run keeps by its end.

``epoch_NNN.pt`` is written every ``train.save_period`` epochs and never deleted from the run
folder (``drive.keep_last`` prunes Drive only). The check before the first step counted only
the next epoch's save: a run of 100 epochs on a disk with room for three checkpoints passed,
trained for hours, and lost the epoch whose save met the full disk. Now it counts every file
the run writes by its last epoch that is not in the folder yet, and the refusal says how much
that is and what to change. Pure arithmetic over ``room.shortage`` (its ``free_bytes``
injection), no training."""
from __future__ import annotations

import os
from types import SimpleNamespace

MiB = 1 << 20


def _cfg(tmp_path, **train):
    t = {"out_dir": str(tmp_path / "logs"), "epochs": 10, "save_period": 2, "eval_period": 100,
         "save_minutes": 0.0, **train}
    os.makedirs(t["out_dir"], exist_ok=True)
    return SimpleNamespace(train=SimpleNamespace(**t),
                           data=SimpleNamespace(cache="none", root=str(tmp_path / "data")),
                           model=SimpleNamespace(input_size=64))


def test_the_check_counts_every_epoch_file_the_run_keeps_by_its_end(tmp_path):
    """10 epochs, save_period 2, checkpoints of 100 MiB: epoch 1 writes last.pt; by epoch 10
    the run adds epoch_002 to epoch_010 (5), best.pt (the last epoch evaluates) and a
    temporary file beside last.pt as a later save replaces it: 8 x 100 MiB. One byte less
    is refused, naming them and the total."""
    from trainer import room

    cfg = _cfg(tmp_path)
    size = 100 * MiB
    need = 8 * size
    assert room.shortage(cfg, 0, size, free_bytes=lambda p: need) is None
    why = room.shortage(cfg, 0, size, free_bytes=lambda p: need - 1)
    assert why == (
        f"not enough free disk space in {cfg.train.out_dir} for the checkpoint of epoch 1: its "
        f"save writes last.pt of about 100.0 MiB each, and by epoch 10 the run adds 7 more of "
        f"that size (epoch_002.pt to epoch_010.pt: 5 files, train.save_period 2; best.pt; a "
        f"temporary file beside a file a save replaces), none deleted here (drive.keep_last "
        f"prunes Drive only), 800.0 MiB ({need} bytes) by the run's end, only 800.0 MiB "
        f"({need - 1} bytes) free; nothing was trained: free some space or set train.out_dir "
        f"to a folder on a larger disk, or raise train.save_period, or set train.keep_local "
        f"(the newest epoch files kept here)")


def test_epoch_files_already_there_take_their_space_already(tmp_path):
    """A resume from epoch 4 of that run: epoch_006.pt is still in the folder (a branch went
    back past it), and so are last.pt and best.pt; only the files not there are counted:
    epoch 5 writes last.pt (a temporary file beside it), then epoch_008.pt and epoch_010.pt."""
    from trainer import room

    cfg = _cfg(tmp_path)
    for name in ("last.pt", "best.pt", "epoch_002.pt", "epoch_004.pt", "epoch_006.pt"):
        (tmp_path / "logs" / name).write_bytes(b"x")
    size = 100 * MiB
    assert room.shortage(cfg, 4, size, free_bytes=lambda p: 3 * size) is None
    why = room.shortage(cfg, 4, size, free_bytes=lambda p: 3 * size - 1)
    assert why is not None and "by epoch 10 the run adds 2 more of that size (epoch_008.pt to " \
        "epoch_010.pt: 2 files, train.save_period 2), none deleted here" in why, why


def test_the_last_epoch_alone_counts_as_before(tmp_path):
    """Nothing after the next epoch: the line is the one of the next save, `at once`."""
    from trainer import room

    cfg = _cfg(tmp_path, epochs=1, save_period=1)
    why = room.shortage(cfg, 0, 100 * MiB, free_bytes=lambda p: 1)
    assert why is not None and "its save writes last.pt, epoch_001.pt, best.pt of about " \
        "100.0 MiB each, 300.0 MiB (314572800 bytes) at once, only 1 B (1 bytes) free" in why, why
    assert "save_period" not in why


def test_a_file_the_run_moves_aside_takes_no_room_for_its_name(tmp_path):
    """epoch_002.pt here is a bad state --resume auto passed over: the run's first save moves
    it aside (its bytes stay on the disk), so the run's own epoch_002.pt needs room of its
    own, and last.pt, passed over too, is no file a save replaces."""
    from trainer import room

    cfg = _cfg(tmp_path, epochs=2, save_period=1)
    for name in ("last.pt", "epoch_001.pt", "epoch_002.pt"):
        (tmp_path / "logs" / name).write_bytes(b"x")
    size = 100 * MiB
    # Epoch 2 writes last.pt (replaced: a temporary file), epoch_002.pt (there), best.pt.
    assert room.shortage(cfg, 1, size, free_bytes=lambda p: 2 * size) is None
    aside = ("epoch_002.pt", "last.pt")
    assert room.shortage(cfg, 1, size, free_bytes=lambda p: 3 * size, aside=aside) is None
    why = room.shortage(cfg, 1, size, free_bytes=lambda p: 3 * size - 1, aside=aside)
    assert why is not None and "314572800 bytes) at once" in why, why
