"""docs/troubleshooting.md, "Training", the data side: a loss that is not finite and the
decoded-image cache (see tests/_messages.py; the rest of the section is in
test_messages_train.py). Nothing trains: one forward pass at most.
"""
from __future__ import annotations

import logging
import os
import shutil

import pytest
import torch

from _messages import error_text, log_text, renders, shown
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from trainer.config import load_config
from trainer.errors import DataError, NonFiniteLossError
from trainer.state import Position

CLASSES = ["circle", "square", "triangle"]   # the synthetic dataset's (tests/conftest.py)


# --------------------------------------------------------------------------- the loss

@renders("the loss became")
def test_a_loss_that_is_not_finite(tiny_config, synth_voc):
    from trainer.data.dataset import YoloDataset, build_loader
    from trainer.data.voc import read_annotation_file
    from trainer.one_epoch import train_one_epoch
    from trainer.loss import YoloLoss
    from trainer.model import YoloV4Tiny
    from trainer.optim import LRSchedule, build_optimizer
    from trainer.state import EpochMeter

    cfg = load_config(tiny_config())
    size = cfg.model.input_size
    model = YoloV4Tiny(len(CLASSES), cfg.model.anchors, cfg.model.anchors_mask, input_size=size)
    with torch.no_grad():                             # a diverged run: its weights went NaN
        for p in model.parameters():
            p.fill_(float("nan"))
    lines = read_annotation_file(synth_voc.train_lines_file)
    loader = build_loader(YoloDataset(lines, size, len(CLASSES), train=False), 8, shuffle=False,
                          workers=0, seed=0, drop_last=False)
    optimizer = build_optimizer(model, cfg, cfg.train.lr)
    schedule = LRSchedule(cfg)
    with pytest.raises(NonFiniteLossError) as diverged:
        train_one_epoch(model, YoloLoss(len(CLASSES), cfg.model.anchors, cfg.model.anchors_mask, input_size=size),
                        optimizer, loader, torch.device("cpu"), start=Position(), steps=len(loader),
                        lr_at=lambda pos: schedule(pos, 8), scaler=torch.amp.GradScaler("cpu", enabled=False),
                        ema=None, meter=EpochMeter(), after_step=lambda pos, logs: None)
    assert diverged.value.exit_code == 1
    shown("the loss became", error_text(diverged.value))


# --------------------------------------------------------------------------- the image cache

def _image_paths(synth_voc) -> list:
    from trainer.data.voc import read_annotation_file

    return [line.split()[0] for line in read_annotation_file(synth_voc.train_lines_file)]


@renders("data.cache=… need …, more than the … budget (…); loading images without a cache")
def test_an_image_cache_over_its_budget(synth_voc, caplog):
    from trainer.data.dataset import YoloDataset
    from trainer.data.voc import read_annotation_file

    lines = read_annotation_file(synth_voc.train_lines_file)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        ds = YoloDataset(lines, 64, len(CLASSES), train=False, cache="ram", cache_budget=1000)
    assert ds._cache is None                          # training goes on, decoding as it goes
    shown("data.cache=… need …, more than the … budget (…); loading images without a cache",
          log_text(caplog.records))


@renders("the image cache entry … is damaged; delete it and start again")
def test_a_damaged_image_cache_entry(synth_voc, tmp_path):
    from trainer.data.cache import DiskCache

    cache = DiskCache(_image_paths(synth_voc)[:2], 64, tmp_path / "image-cache", threads=1)
    entry = cache.entries[0]
    with open(entry, "r+b") as f:                     # cut short after it was written
        f.truncate(os.path.getsize(entry) // 2)
    with pytest.raises(DataError) as damaged:
        cache.get(0)
    shown("the image cache entry … is damaged; delete it and start again", error_text(damaged.value))


@renders("cannot create the image cache folder")
def test_an_image_cache_folder_that_cannot_be_made(synth_voc, tmp_path):
    from trainer.data.cache import DiskCache

    root = tmp_path / "data-root"
    root.write_text("a file where data.root should be a folder")
    with pytest.raises(DataError) as refused:
        DiskCache(_image_paths(synth_voc)[:1], 64, root / "image-cache", threads=1)
    shown("cannot create the image cache folder", error_text(refused.value))


@renders("cannot write the image cache entry")
def test_an_image_cache_entry_on_a_full_disk(synth_voc, small_disk):
    from trainer.data.cache import DiskCache

    image = _image_paths(synth_voc)[0]
    folder = small_disk(4096)                   # one page: less than the entry (64x~40x3 + 20)
    # (The budget check reads the disk's free space: given one, the write itself fills it.)
    with pytest.raises(DataError) as full:
        DiskCache([image], 64, folder, threads=1, budget=1 << 30)
    assert os.listdir(folder) == []                   # no half-written entry left behind
    text = error_text(full.value)
    assert "No space left on device" in text
    shown("cannot write the image cache entry", text)


@renders("workers started by spawn/forkserver share the cache through")
def test_spawned_workers_and_a_small_dev_shm(synth_voc, monkeypatch):
    from trainer.data.dataset import YoloDataset, build_loader
    from trainer.data.voc import read_annotation_file

    real = shutil.disk_usage

    def docker_shm(path):                             # a container's 64 MB /dev/shm, nearly full
        usage = real(path)
        return usage._replace(free=1000) if os.fspath(path) == "/dev/shm" else usage

    monkeypatch.setattr(shutil, "disk_usage", docker_shm)
    lines = read_annotation_file(synth_voc.train_lines_file)
    ds = YoloDataset(lines, 64, len(CLASSES), train=False, cache="ram")
    loader = build_loader(ds, 4, shuffle=False, workers=1, seed=0, drop_last=False)
    loader.multiprocessing_context = "spawn"          # Python 3.14's default, macOS's everywhere
    with pytest.raises(DataError) as refused:
        iter(loader)
    shown("workers started by spawn/forkserver share the cache through", error_text(refused.value))


# --------------------------------------------------------------------------- image bombs

def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a few bytes of data: a bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + \
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@renders("cannot read image … pixels, more than the")
def test_an_image_bomb_is_refused_before_it_is_decoded(tmp_path):
    from test_attack_data3 import both_refuse
    from trainer.data.images import MAX_PIXELS

    bomb = tmp_path / "000001.png"
    bomb.write_bytes(_png_claiming(100_000, 100_000))   # 30 GB decoded; 200 bytes on disk
    line = both_refuse([f"{bomb} 1,1,20,20,0"],
                       f"Error: cannot read image {bomb}: 100000x100000 pixels, more than the "
                       f"{MAX_PIXELS:,} the trainer decodes (a decompression bomb?); shrink it")
    shown("cannot read image … pixels, more than the", line)
