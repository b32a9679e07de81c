"""Training/eval datasets and loaders on a small synthetic VOC set."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from trainer.data import augment
from trainer.data.dataset import (
    EvalDataset,
    YoloDataset,
    build_loader,
    eval_collate,
    set_loader_epoch,
    to_model_input,
    yolo_collate,
)
from trainer.data.synth import make_synthetic_voc
from trainer.data.voc import parse_annotation_line, read_annotation_file
from trainer.errors import DataError

SIZE = 96


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    result = make_synthetic_voc(out, images=14, classes=3, seed=3, image_size=(60, 120))
    return read_annotation_file(result.train_lines_file)


def _same(a, b):
    return torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_train_sample_shapes_and_ranges(lines):
    ds = YoloDataset(lines, SIZE, 3, train=True, mosaic_prob=1.0, mixup_prob=1.0, epochs=10)
    for i in range(len(ds)):
        image, boxes = ds[i]
        assert image.shape == (3, SIZE, SIZE) and image.dtype == torch.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert boxes.dtype == torch.float32 and boxes.shape[1] == 5
        if len(boxes):
            assert set(boxes[:, 0].tolist()) <= {0.0, 1.0, 2.0}
            cx, cy, w, h = boxes[:, 1:].T
            assert ((cx - w / 2) >= -1e-6).all() and ((cx + w / 2) <= 1 + 1e-6).all()
            assert ((cy - h / 2) >= -1e-6).all() and ((cy + h / 2) <= 1 + 1e-6).all()
            assert (w > 0).all() and (h > 0).all()


def test_validation_path_is_the_letterbox_of_the_line(lines):
    ds = YoloDataset(lines, SIZE, 3, train=False)
    path, raw = parse_annotation_line(lines[0])
    image, boxes = ds[0]
    from trainer.data.dataset import read_image
    from trainer.data.images import decode_fitted, read_bytes

    fitted, orig = decode_fitted(read_bytes(path), SIZE)
    assert orig == read_image(path).shape[:2] and max(orig) > SIZE  # the fitted image is smaller
    padded, _, _ = augment.letterbox(fitted, SIZE)
    np.testing.assert_array_equal((image * 255).round().byte().permute(1, 2, 0).numpy(), padded)
    _, scale, pad = augment.letterbox(read_image(path), SIZE)  # the boxes: the original's letterbox
    expected = augment.letterbox_boxes(raw, scale, pad)
    np.testing.assert_allclose(boxes[:, 0].numpy(), raw[:, 4])
    np.testing.assert_allclose(boxes[:, 1].numpy(), (expected[:, 0] + expected[:, 2]) / 2 / SIZE, atol=1e-6)
    np.testing.assert_allclose(boxes[:, 3].numpy(), (expected[:, 2] - expected[:, 0]) / SIZE, atol=1e-6)


def test_samples_are_a_function_of_seed_epoch_index(lines):
    a = YoloDataset(lines, SIZE, 3, train=True, epochs=10, seed=1)
    b = YoloDataset(lines, SIZE, 3, train=True, epochs=10, seed=1)
    c = YoloDataset(lines, SIZE, 3, train=True, epochs=10, seed=2)
    assert _same(a[4], b[4]) and _same(a[4], a[4])
    assert not torch.equal(a[4][0], c[4][0])
    b.set_epoch(1)
    assert not torch.equal(a[4][0], b[4][0])


def test_mosaic_stops_after_special_aug_ratio(lines):
    ds = YoloDataset(lines, SIZE, 3, train=True, mosaic_prob=1.0, mixup_prob=0.0, epochs=10,
                     special_aug_ratio=0.7, flip_prob=0.0, hsv=(0, 0, 0), scale=(1, 1), jitter=0.0)
    assert ds.special_aug_active(6) and not ds.special_aug_active(7)
    # Without mosaic, scale (1, 1) and no jitter the image fills the whole canvas along one side.
    ds.set_epoch(7)
    for i in range(len(ds)):
        image, _ = ds.sample(i)
        assert (image != 128).any(axis=2).any(axis=0).all() or (image != 128).any(axis=2).any(axis=1).all()
    # With mosaic, four tiles meet at a cut inside the central 30-70 % band; grey borders remain.
    ds.set_epoch(0)
    image, _ = ds.sample(0)
    assert image.shape == (SIZE, SIZE, 3)
    assert not YoloDataset(lines, SIZE, 3, train=False).special_aug_active(0)


def test_loader_with_workers_matches_in_process_samples(lines):
    ds = YoloDataset(lines, SIZE, 3, train=True, epochs=4, seed=7)
    loader = build_loader(ds, 4, shuffle=True, workers=2, seed=7, drop_last=False)
    assert loader.pin_memory == torch.cuda.is_available()
    reference = YoloDataset(lines, SIZE, 3, train=True, epochs=4, seed=7)
    for epoch in (0, 3):  # the epoch must reach the worker processes
        set_loader_epoch(loader, epoch)
        reference.set_epoch(epoch)
        order = list(iter(loader.sampler))
        seen = 0
        for images, targets in loader:
            expected = yolo_collate([reference[i] for i in order[seen:seen + len(images)]])
            # Batches travel as uint8; the model's input is exactly the per-sample float images.
            assert images.dtype == torch.uint8
            assert torch.equal(to_model_input(images, "cpu"), expected[0]) and torch.equal(targets, expected[1])
            seen += len(images)
        assert seen == len(ds)
    set_loader_epoch(loader, 0)
    first = list(iter(loader.sampler))
    set_loader_epoch(loader, 1)
    assert list(iter(loader.sampler)) != first and sorted(first) == list(range(len(ds)))


class _GlobalRandom(Dataset):
    """Reports what the global RNGs give inside a worker."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        import random

        info = torch.utils.data.get_worker_info()
        return torch.tensor([info.id, random.random(), float(np.random.random()), float(torch.rand(1))])


def test_workers_get_distinct_seeds_per_worker_and_epoch():
    ds = _GlobalRandom()
    loader = build_loader(ds, 1, shuffle=False, workers=2, seed=0, drop_last=False)
    rows = []
    for epoch in range(2):
        set_loader_epoch(loader, epoch)
        batch = torch.cat(list(loader))
        # The first item each worker draws, per epoch: distinct across workers and epochs.
        for worker in (0, 1):
            rows.append(tuple(batch[batch[:, 0] == worker][0, 1:].tolist()))
    for column in range(3):
        assert len({r[column] for r in rows}) == 4


def test_collate_and_images_without_boxes(tmp_path, lines):
    path, _ = parse_annotation_line(lines[0])
    ds = YoloDataset([path, lines[1]], SIZE, 3, train=True, mosaic=False, epochs=1)
    images, targets = yolo_collate([ds[0], ds[1]])
    assert images.shape == (2, 3, SIZE, SIZE)
    assert targets.shape[1] == 6 and (targets[:, 0] == 1).all()
    empty_images, empty = yolo_collate([ds[0]])
    assert empty.shape == (0, 6)


def test_eval_dataset_and_ground_truth(lines):
    ds = EvalDataset(lines, SIZE)
    image, index, (h, w) = ds[2]
    path, raw = parse_annotation_line(lines[2])
    from trainer.data.dataset import read_image

    assert (h, w) == read_image(path).shape[:2] and index == 2
    assert image.shape == (3, SIZE, SIZE)
    gt = ds.ground_truth()
    boxes, labels, difficult = gt[2]
    np.testing.assert_array_equal(boxes, raw[:, :4])
    np.testing.assert_array_equal(labels, raw[:, 4].astype(np.int64))
    assert not difficult.any()
    loader = build_loader(ds, 3, shuffle=False, workers=0, seed=0, drop_last=False)
    images, indices, sizes = next(iter(loader))
    assert images.shape == (3, 3, SIZE, SIZE) and indices.tolist() == [0, 1, 2]
    assert sizes.dtype == torch.int64 and sizes.shape == (3, 2)
    _, _, same = eval_collate([ds[0]])
    assert tuple(same[0].tolist()) == ds[0][2]


def test_bad_inputs_are_named(tmp_path, lines):
    path, _ = parse_annotation_line(lines[0])
    with pytest.raises(DataError, match="uses class 2 but the model has 2 classes"):
        YoloDataset([f"{path} 1,1,20,20,2"], SIZE, 2, train=True)
    with pytest.raises(DataError, match="multiple of 32"):
        YoloDataset(lines, 100, 3, train=True)
    ds = YoloDataset([f"{tmp_path}/nope.jpg 1,1,5,5,0"], SIZE, 3, train=False)
    with pytest.raises(DataError, match="nope.jpg"):
        ds[0]
    with pytest.raises(DataError, match="no annotation lines"):
        EvalDataset([], SIZE)


def test_eval_ground_truth_from_voc_xml_flags_difficult(tmp_path):
    r = make_synthetic_voc(tmp_path, images=120, classes=3, seed=0, image_size=(40, 60))
    lines = read_annotation_file(r.train_lines_file) + read_annotation_file(r.val_lines_file)
    plain = EvalDataset(lines, SIZE).ground_truth()
    voc = EvalDataset(lines, SIZE, classes=r.class_names).ground_truth()
    hard = [i for i, (_, _, d) in voc.items() if d.any()]
    assert hard, "the synthetic set should hold a few difficult objects"
    for i in range(len(lines)):
        boxes, labels, difficult = voc[i]
        # The lines hold exactly the objects that are not difficult, in the XML's order.
        np.testing.assert_array_equal(boxes[~difficult], plain[i][0])
        np.testing.assert_array_equal(labels[~difficult], plain[i][1])
    assert not any(plain[i][2].any() for i in plain)


def test_distributed_loader_uses_the_rank_and_a_distributed_sampler(tmp_path, lines):
    import torch.distributed as dist
    from torch.utils.data import DistributedSampler

    hook = sys.excepthook  # torch wraps it ("[rank0]: ..."), and leaves it wrapped
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/rendezvous", rank=0, world_size=1)
    try:
        ds = YoloDataset(lines, SIZE, 3, train=True, epochs=2, seed=4)
        loader = build_loader(ds, 5, shuffle=True, workers=0, seed=4, drop_last=True, distributed=True)
        assert isinstance(loader.sampler, DistributedSampler) and loader.sampler.num_replicas == 1
        set_loader_epoch(loader, 1)
        assert ds.epoch == 1 and loader.sampler.epoch == 1
        assert [len(images) for images, _ in loader] == [5, 5]  # 14 images, drop_last
    finally:
        dist.destroy_process_group()
        sys.excepthook = hook


class _Threads(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        import cv2

        return torch.tensor([cv2.getNumThreads(), torch.get_num_threads()])


def test_workers_run_one_opencv_and_one_torch_thread_each():
    """Two workers on two cores must not each start a thread pool per core and fight."""
    loader = build_loader(_Threads(), 2, shuffle=False, workers=2, seed=0, drop_last=False)
    for batch in loader:
        assert batch.tolist() == [[1, 1], [1, 1]]
