"""trainer23: the start-up room check counts the mid-epoch autosaves and the image cache.

Before, it counted only the next epoch's files (``last.pt``, ``epoch_NNN.pt``, ``best.pt``):
a run with ``train.save_minutes`` keeps two autosaves beside them (a third while one is
written), and ``data.cache=disk`` writes the decoded images into ``data.root/image-cache``
before the first step. On a disk with room for the epoch's files alone, the run passed the
check, trained, and lost the save that met the full disk. Sizes are measured from what the
run writes: the checkpoint's estimate (trainer.room.checkpoint_bytes, or the file resumed),
and the cache's entries from the images' headers, as the cache computes them."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from _tmpfs import small_disk  # noqa: F401 (a fixture)
from test_trainer22_room import MiB, _config, _Steps

GiB = 1 << 30


def test_a_disk_with_room_for_the_epoch_files_but_not_the_autosaves_is_refused(
        tiny_config, small_disk, one_torch_thread):
    """Epoch 1's save writes last.pt and epoch_001.pt (about 2 x 70 MiB for the test model);
    the disk has 200 MiB. With train.save_minutes the run also keeps two autosaves beside them:
    refused, naming them; not a step trained."""
    from trainer.engine import fit
    from trainer.errors import SaveError

    disk = small_disk(200 * MiB)
    logs = disk / "logs"
    steps = _Steps()
    with pytest.raises(SaveError) as refused:
        fit(_config(tiny_config, logs, **{"train.save_minutes": 5}), resume="none",
            callbacks=[steps])
    text = str(refused.value)
    assert "\n" not in text
    assert text.startswith(f"not enough free disk space in {logs} for the checkpoint of epoch 1: "
                           f"its save writes last.pt, epoch_001.pt of about "), text
    assert " each, with 2 autosaves of that size kept beside them (train.save_minutes), " in text
    assert "only 200.0 MiB (209715200 bytes) free; nothing was trained" in text
    assert steps.steps == 0
    assert [n for n in os.listdir(logs) if n.endswith(".pt")] == []


def _cfg(tmp_path, synth_voc, **train):
    t = {"out_dir": str(tmp_path / "logs"), "epochs": 2, "save_period": 1, "eval_period": 100,
         "save_minutes": 0.0, **train}
    return SimpleNamespace(
        train=SimpleNamespace(**t),
        data=SimpleNamespace(cache="disk", root=str(tmp_path / "data")),
        model=SimpleNamespace(input_size=64))


def _images(synth_voc):
    return (synth_voc.train_lines_file.read_text().splitlines(),
            synth_voc.val_lines_file.read_text().splitlines())


def test_the_image_cache_counts_when_it_will_be_written_on_the_same_disk(tmp_path, synth_voc):
    """A checkpoint of 600 MiB (epoch 1 writes two: 1.2 GiB) and the synthetic images' cache:
    a disk with room for the checkpoints alone is refused, naming the cache and its size,
    which is what the cache then really writes (its plan, from the images' headers)."""
    from drivestage.sizes import format_size
    from trainer import room
    from trainer.data.cache import DiskCache
    from trainer.data.voc import parse_annotation_line

    os.makedirs(tmp_path / "logs")
    cfg = _cfg(tmp_path, synth_voc)
    train, val = _images(synth_voc)
    size = 600 * MiB
    cache = room.cache_bytes(cfg, train, val, free=10 * GiB, checkpoints=2 * size)
    assert cache > 0
    # (trainer24: and what the run adds by epoch 2, epoch_002.pt, best.pt and a temporary
    # file beside last.pt: five checkpoints in all.)
    fits = 5 * size + cache
    assert room.shortage(cfg, 0, size, free_bytes=lambda p: fits, images=(train, val)) is None
    why = room.shortage(cfg, 0, size, free_bytes=lambda p: fits - 1, images=(train, val))
    folder = os.path.join(cfg.data.root, "image-cache")
    assert why is not None and why.startswith(
        f"not enough free disk space in {cfg.train.out_dir} for the checkpoint of epoch 1: its "
        f"save writes last.pt, epoch_001.pt of about 600.0 MiB each, after "), why
    assert f" of decoded images the image cache writes first into {folder} (data.cache=disk), " \
           f"and by epoch 2 the run adds 3 more of that size " in why, why
    assert f"{format_size(fits)} ({fits} bytes) by the run's end, only {format_size(fits - 1)} " \
           f"({fits - 1} bytes) free; " in why, why
    assert why.endswith("a folder on a larger disk, or raise train.save_period, or set "
                        "train.keep_local (the newest epoch files kept here), or set "
                        "data.cache=none")
    # What the cache then writes is what was counted.
    paths = [parse_annotation_line(line)[0] for line in train]
    before = {n for n in os.listdir(folder)} if os.path.isdir(folder) else set()
    DiskCache(paths, 64, folder, budget=10 * GiB)
    DiskCache([parse_annotation_line(line)[0] for line in val], 64, folder, budget=10 * GiB)
    written = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)
                  if n not in before)
    assert written == cache


def test_the_image_cache_is_not_counted_where_it_would_not_be_written(tmp_path, synth_voc):
    """The cache leaves 1 GiB free or is not made (a warning, and the run reads the images):
    where it would not fit that budget it writes nothing, so it is not counted; nor is a
    cache already complete, nor data.cache=none."""
    from trainer import room
    from trainer.data.cache import DISK_RESERVE

    os.makedirs(tmp_path / "logs")
    # One epoch: its save (last.pt, epoch_001.pt, best.pt) is all the run writes (trainer24
    # counts what a longer run adds by its end).
    cfg = _cfg(tmp_path, synth_voc, epochs=1)
    train, val = _images(synth_voc)
    size = (DISK_RESERVE + 1024) // 3            # three of them: 1 KiB more than the reserve
    room_for_both = 3 * size                     # less than the reserve is left for the cache
    assert room.cache_bytes(cfg, train, val, free=room_for_both, checkpoints=3 * size) == 0
    assert room.shortage(cfg, 0, size, free_bytes=lambda p: room_for_both,
                         images=(train, val)) is None
    assert room.cache_bytes(cfg, train, val, free=10 * GiB, checkpoints=3 * size) > 0
    cfg.data.cache = "none"
    assert room.cache_bytes(cfg, train, val, free=10 * GiB, checkpoints=3 * size) == 0
    # Checkpoints within the cache's reserve: the cache cannot crowd them out (it leaves the
    # reserve free), so its images are not even read.
    cfg.data.cache = "disk"
    assert room.cache_bytes(cfg, train, val, free=10 * GiB, checkpoints=DISK_RESERVE) == 0


def test_autosaves_count_only_with_save_minutes_and_beside_those_already_there(tmp_path,
                                                                              synth_voc):
    """2 autosaves kept beside the epoch's files (3 at once mid-epoch, while one is written);
    those already in the run folder take their space already; none with save_minutes 0."""
    from trainer import room

    logs = tmp_path / "logs"
    os.makedirs(logs)
    size = 100
    cfg = _cfg(tmp_path, synth_voc)
    cfg.data.cache = "none"
    assert room.needed_bytes(cfg, ["last.pt", "epoch_001.pt"], size) == 200
    cfg.train.save_minutes = 5
    assert room.needed_bytes(cfg, ["last.pt", "epoch_001.pt"], size) == 400
    assert room.needed_bytes(cfg, ["last.pt"], size) == 300      # mid-epoch: three at once
    for it in (10, 20):
        (logs / f"autosave_{it:08d}.pt").write_bytes(b"x")
    assert room.needed_bytes(cfg, ["last.pt", "epoch_001.pt"], size) == 200
    assert room.needed_bytes(cfg, ["last.pt"], size) == 100
