"""Fitted decoding and the decoded-image caches (data.cache): same pixels, content keys, budgets."""
from __future__ import annotations

import io
import logging
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from trainer.data import cache as image_cache
from trainer.data.cache import DiskCache, RamCache, content_key, open_cache
from trainer.data.dataset import YoloDataset
from trainer.data.images import decode_fitted, fitted_shape, read_bytes, read_image
from trainer.data.synth import make_synthetic_voc
from trainer.data.voc import read_annotation_file
from trainer.errors import CacheBudgetError, DataError

SIZE = 96


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    result = make_synthetic_voc(out, images=10, classes=3, seed=5, image_size=(60, 140))
    return read_annotation_file(result.train_lines_file)


def _paths(lines):
    return [line.split()[0] for line in lines]


def _photo(h, w, seed=0):
    """A smooth image (JPEG-friendly, so scaled decoding is close to a full decode)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (max(2, h // 40), max(2, w // 40), 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _jpeg(path, image_rgb, **save):
    Image.fromarray(image_rgb).save(path, "JPEG", quality=95, **save)
    return str(path)


# --------------------------------------------------------------------------- fitted decoding

def test_a_large_jpeg_is_decoded_scaled_to_the_fitted_size(tmp_path):
    image = _photo(1200, 1600)
    path = _jpeg(tmp_path / "big.jpg", image)
    fitted, orig = decode_fitted(read_bytes(path), 416)
    assert orig == (1200, 1600)
    assert fitted.shape == (*fitted_shape(orig, 416), 3) == (312, 416, 3) and fitted.dtype == np.uint8
    # libjpeg's 1/2-scaled decode then a resize: the same picture as a full decode and area resize.
    reference = cv2.resize(read_image(path), (416, 312), interpolation=cv2.INTER_AREA)
    assert np.abs(fitted.astype(int) - reference).mean() < 2.0


def test_small_images_are_not_enlarged_and_non_jpegs_work(tmp_path):
    png = tmp_path / "small.png"
    cv2.imwrite(str(png), cv2.cvtColor(_photo(50, 70), cv2.COLOR_RGB2BGR))
    fitted, orig = decode_fitted(read_bytes(png), 96)
    assert orig == (50, 70)
    np.testing.assert_array_equal(fitted, read_image(png))


def test_exif_rotation_gives_the_frame_of_a_full_decode(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: OpenCV's decode turns the image upright
    path = _jpeg(tmp_path / "turned.jpg", _photo(900, 1300), exif=exif)
    full = read_image(path)
    assert full.shape[:2] == (1300, 900)
    fitted, orig = decode_fitted(read_bytes(path), 416)
    assert orig == full.shape[:2] and fitted.shape[:2] == fitted_shape(orig, 416) == (416, 288)


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match="cannot read image"):
        decode_fitted(read_bytes(bad), 96, str(bad))
    with pytest.raises(DataError, match=r"cannot read image .*missing\.jpg"):
        read_bytes(tmp_path / "missing.jpg")


# --------------------------------------------------------------------------- the caches

def test_cache_hits_are_the_pixels_of_a_fresh_decode(lines, tmp_path):
    paths = _paths(lines)
    ram = RamCache(paths, SIZE, threads=2)
    disk = DiskCache(paths, SIZE, tmp_path / "c", threads=2)
    again = DiskCache(paths, SIZE, tmp_path / "c", threads=1)  # every entry found on disk this time
    for i, path in enumerate(paths):
        fresh, orig = decode_fitted(read_bytes(path), SIZE)
        for cache in (ram, disk, again):
            image, got_orig = cache.get(i)
            np.testing.assert_array_equal(image, fresh)
            assert got_orig == orig
    view, _ = ram.get(0)
    assert not view.flags.writeable  # the augmentations can never write into the cache


def test_disk_entries_are_named_by_content_and_size(lines, tmp_path):
    paths = _paths(lines)
    DiskCache(paths, SIZE, tmp_path / "c")
    names = sorted(os.listdir(tmp_path / "c"))
    assert names == sorted({f"{content_key(read_bytes(p), SIZE)}.rgb" for p in paths})
    assert not any(n.endswith(".partial") for n in names)
    # The same bytes under another path (another machine, another folder) find the same entry.
    copy = tmp_path / "elsewhere.jpg"
    copy.write_bytes(read_bytes(paths[0]))
    cache = DiskCache([str(copy)], SIZE, tmp_path / "c", budget=0)  # nothing to write: fits a zero budget
    np.testing.assert_array_equal(cache.get(0)[0], decode_fitted(read_bytes(paths[0]), SIZE)[0])


def test_the_key_changes_when_the_file_bytes_change(tmp_path):
    path = _jpeg(tmp_path / "a.jpg", _photo(100, 120, seed=1))
    first = DiskCache([path], SIZE, tmp_path / "c")
    old_key = content_key(read_bytes(path), SIZE)
    _jpeg(path, _photo(100, 120, seed=2))  # same name, new picture
    new_key = content_key(read_bytes(path), SIZE)
    assert new_key != old_key and content_key(read_bytes(path), SIZE + 32) != new_key
    second = DiskCache([path], SIZE, tmp_path / "c")
    assert first.entries[0] != second.entries[0]
    np.testing.assert_array_equal(second.get(0)[0], decode_fitted(read_bytes(path), SIZE)[0])
    assert not np.array_equal(first.get(0)[0], second.get(0)[0])


def test_a_damaged_entry_is_decoded_again(lines, tmp_path):
    paths = _paths(lines)[:2]
    cache = DiskCache(paths, SIZE, tmp_path / "c")
    entry = cache.entries[0]
    with open(entry, "r+b") as f:
        f.truncate(os.path.getsize(entry) // 2)
    with pytest.raises(DataError, match="is damaged; delete it and start again"):
        cache.get(0)
    repaired = DiskCache(paths, SIZE, tmp_path / "c")
    np.testing.assert_array_equal(repaired.get(0)[0], decode_fitted(read_bytes(paths[0]), SIZE)[0])


def test_the_budget_is_checked_before_anything_is_filled(lines, tmp_path):
    paths = _paths(lines)
    need = sum(int(np.prod(decode_fitted(read_bytes(p), SIZE)[0].shape)) for p in paths)
    with pytest.raises(CacheBudgetError) as err:
        RamCache(paths, SIZE, budget=need - 1)
    assert str(err.value) == (
        f"data.cache=ram: {len(paths)} images fitted to {SIZE} px need {need / 2**20:.1f} MiB, more than the "
        f"{(need - 1) / 2**20:.1f} MiB budget (half the memory available now); loading images without a cache; "
        "use data.cache=disk, or free memory")
    RamCache(paths, SIZE, budget=need)  # exactly enough
    with pytest.raises(CacheBudgetError, match=r"^data.cache=disk: 8 images fitted to 96 px need .* budget \(free "
                                               r"space in .* less 1.00 GiB\); loading images without a cache; free "
                                               r"disk space, or set data.cache=none$"):
        DiskCache(paths, SIZE, tmp_path / "c", budget=1000)
    assert os.listdir(tmp_path / "c") == []  # refused before writing anything


def test_the_budget_defaults_to_half_the_available_memory(lines, monkeypatch):
    monkeypatch.setattr(image_cache, "available_memory", lambda: 1000)
    with pytest.raises(CacheBudgetError, match=r"more than the 0\.0 MiB budget \(half the memory available now\)"):
        RamCache(_paths(lines), SIZE)


def test_a_refused_cache_falls_back_to_decoding_with_a_warning(lines, tmp_path, caplog):
    plain = YoloDataset(lines, SIZE, 3, train=True, mosaic_prob=1.0, mixup_prob=1.0, epochs=10, seed=3)
    with caplog.at_level(logging.WARNING, logger="trainer.data.cache"):
        refused = YoloDataset(lines, SIZE, 3, train=True, mosaic_prob=1.0, mixup_prob=1.0, epochs=10, seed=3,
                              cache="ram", cache_budget=1)
    assert refused._cache is None
    assert [r.getMessage().split(" need ")[0] for r in caplog.records] == [f"data.cache=ram: {len(lines)} images fitted to 96 px"]
    assert "loading images without a cache" in caplog.records[0].getMessage()
    for i in range(len(plain)):
        assert torch.equal(plain[i][0], refused[i][0]) and torch.equal(plain[i][1], refused[i][1])


def test_samples_do_not_depend_on_the_cache_mode(lines, tmp_path):
    kwargs = dict(train=True, mosaic_prob=0.7, mixup_prob=0.7, epochs=10, seed=9)
    datasets = [YoloDataset(lines, SIZE, 3, cache="none", **kwargs),
                YoloDataset(lines, SIZE, 3, cache="ram", **kwargs),
                YoloDataset(lines, SIZE, 3, cache="disk", cache_dir=str(tmp_path / "c"), **kwargs)]
    for epoch in (0, 1):
        for ds in datasets:
            ds.set_epoch(epoch)
        for i in range(len(lines)):
            first = datasets[0][i]
            for other in datasets[1:]:
                got = other[i]
                assert torch.equal(first[0], got[0]) and torch.equal(first[1], got[1])


def test_disk_cache_defaults_to_a_folder_beside_the_images(lines):
    ds = YoloDataset(lines, SIZE, 3, train=False, cache="disk")
    folder = os.path.join(os.path.dirname(_paths(lines)[0]), "image-cache")
    assert str(ds._cache.folder) == folder and len(os.listdir(folder)) == len(lines)


def test_open_cache_rejects_an_unknown_mode(lines):
    with pytest.raises(DataError, match="data.cache must be one of none, ram, disk, got 'gpu'"):
        open_cache("gpu", _paths(lines), SIZE)
    assert open_cache("none", _paths(lines), SIZE) is None


def test_header_reading_needs_no_decode(tmp_path):
    from trainer.data.images import _jpeg_size, header_size

    for progressive in (False, True):
        buf = io.BytesIO()
        Image.fromarray(_photo(123, 457)).save(buf, "JPEG", progressive=progressive)
        assert _jpeg_size(buf.getvalue()) == header_size(buf.getvalue()) == (123, 457)


def test_data_cache_reaches_the_training_datasets(tiny_config, tmp_path, one_torch_thread):
    from trainer.config import load_config
    from trainer.engine import fit
    from trainer.errors import ConfigError

    with pytest.raises(ConfigError, match="config key 'data.cache' must be one of none, ram, disk, got 'gpu'"):
        load_config(tiny_config(**{"data.cache": "gpu"}))
    cfg = load_config(tiny_config(**{"data.cache": "disk", "train.epochs": 1, "train.freeze_epochs": 0}))
    fit(cfg, resume="none")
    images = {line.split()[0] for f in (cfg.data.train, cfg.data.val) for line in read_annotation_file(f)}
    entries = os.listdir(tmp_path / "data" / "image-cache")
    assert sorted(entries) == sorted({f"{content_key(read_bytes(p), 64)}.rgb" for p in images})


@pytest.mark.slow
def test_the_loader_bench_runs_and_skips_ultralytics_when_it_is_missing(tmp_path):
    import json
    from pathlib import Path

    from _trainer_proc import start_script

    script = Path(__file__).resolve().parents[1] / "bench" / "data_pipeline.py"
    env = dict(os.environ, PYTHONNOUSERSITE="1")   # (read by its measurements: fresh interpreters)
    # The bench's own process forked with torch imported (tests/_trainer_proc.py); each of its
    # measurements of ours forked from it (--fork: a fresh interpreter's torch import cost
    # 2 s of CPU each), the Ultralytics probe a fresh interpreter, as the bench makes it.
    proc = start_script(str(script), ["--images", "30", "--size", "64", "--batch", "4",
                                      "--warmup", "1", "--batches", "2", "--repeats", "1", "--caches", "none", "ram",
                                      "--fork", "--image-size", "64", "96",   # (not VOC's 375-500 px)
                                      "--ultralytics-path", str(tmp_path / "nothing-here"),
                                      "--json", str(tmp_path / "r.json")],
                        env=env, stdout=str(tmp_path / "out"), stderr=str(tmp_path / "err"))
    try:
        code = proc.wait(timeout=600)
    finally:
        proc.kill()
    stderr = (tmp_path / "err").read_text()
    assert code == 0, stderr
    if "ultralytics not importable, its comparison skipped" not in stderr:
        pytest.skip("ultralytics is importable in this environment")
    assert "native bf16:" in stderr and "CPU:" in stderr
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert [(r["loader"], r["cache"]) for r in rows] == [("0.1.0", "none"), ("ours", "none"), ("ours", "ram")]
    assert all(r["median"] > 0 and r["median_per_cpu"] > 0 for r in rows)


def test_spawned_workers_share_the_ram_cache_and_load_the_same_batches(lines):
    """Python 3.14 starts workers by forkserver: the cache must reach them as shared memory."""
    from torch.utils.data import DataLoader

    ds = YoloDataset(lines, SIZE, 3, train=True, mosaic_prob=1.0, mixup_prob=1.0, epochs=10, seed=4, cache="ram")
    reference = [ds.collate(ds.__getitems__([i, i + 1])) for i in range(0, 4, 2)]
    loader = DataLoader(ds, batch_size=2, num_workers=1, multiprocessing_context="spawn", collate_fn=ds.collate)
    for (images, targets), (want_images, want_targets) in zip(loader, reference):
        assert torch.equal(images, want_images) and torch.equal(targets, want_targets)
    assert ds._cache._shared is not None and ds._cache._shared.is_shared()
    np.testing.assert_array_equal(ds._cache.get(1)[0], decode_fitted(read_bytes(_paths(lines)[1]), SIZE)[0])
