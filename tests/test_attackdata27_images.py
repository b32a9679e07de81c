"""Hostile image files met by training, evaluation and ``trainer predict`` (attackdata27).

A dataset downloaded from anywhere may hold an image whose few kilobytes decode into
gigabytes (a decompression bomb), or a FIFO under an image's name. Tiny files, no training.
"""
from __future__ import annotations

import os
import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from _messages import error_text
from trainer.data.images import MAX_PIXELS
from trainer.errors import DataError


def _tiff_bomb(path, side: int = 14_000) -> None:
    """A deflate TIFF of one grey: ~0.3 MB on disk, ``side``² pixels (196 M at 14 000, more
    than MAX_PIXELS): OpenCV decoded it whole (600 MB in RGB, 1.5 GB at the peak)."""
    assert side * side > MAX_PIXELS
    Image.new("L", (side, side)).save(path, compression="tiff_deflate")


def _jpeg(h: int = 40, w: int = 56) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


def _jpeg_claiming(data: bytes, h: int, w: int) -> bytes:
    """``data`` with its frame header (SOF0) saying ``h`` x ``w``."""
    at = data.index(b"\xff\xc0")
    return data[:at + 5] + h.to_bytes(2, "big") + w.to_bytes(2, "big") + data[at + 9:]


def test_a_tiff_bomb_is_refused_before_it_is_decoded(tmp_path):
    """Only JPEG and PNG headers were read for the size: a TIFF (or BMP, WebP) went to
    OpenCV unchecked, which decodes up to 2^30 pixels."""
    from trainer.data.images import decode_fitted, read_bytes

    bomb = tmp_path / "000001.tif"
    _tiff_bomb(bomb)
    with pytest.raises(DataError) as refused:
        decode_fitted(read_bytes(bomb), 416, str(bomb))
    assert error_text(refused.value) == (
        f"Error: cannot read image {bomb}: 196,000,000 pixels, more than the {MAX_PIXELS:,} the "
        "trainer decodes (a decompression bomb?); shrink it")


@pytest.mark.parametrize("before_sof", [b"\xff\x01", b"\xff\xd3", b"\x00\x00", b"\xff\x00"],
                         ids=["TEM", "RST3", "stray-bytes", "stuffed-zero"])
def test_a_jpeg_whose_markers_hide_its_size_is_still_measured(tmp_path, before_sof):
    """libjpeg passes over a TEM or RST marker and over stray bytes before the frame header;
    the header scan stopped there and found no size, so a JPEG claiming 40000x40000 was
    handed to OpenCV unchecked."""
    from trainer.data.images import _jpeg_size, decode_fitted, read_image

    plain = _jpeg()
    app0 = 4 + int.from_bytes(plain[4:6], "big")          # after SOI and the JFIF segment
    hidden = plain[:app0] + before_sof + plain[app0:]
    assert cv2.imdecode(np.frombuffer(hidden, np.uint8), cv2.IMREAD_COLOR).shape == (40, 56, 3)
    assert _jpeg_size(hidden) == (40, 56)
    image, orig = decode_fitted(hidden, 64, "x.jpg")        # a good file still decodes
    assert image.shape == (40, 56, 3) and orig == (40, 56)
    bomb = tmp_path / "x.jpg"       # decoded whole by evaluation and predict
    bomb.write_bytes(_jpeg_claiming(hidden, 40_000, 40_000))
    with pytest.raises(DataError, match="40000x40000 pixels, more than the"):
        read_image(bomb)


def test_predict_refuses_an_image_bomb_and_goes_on_with_the_others(tmp_path):
    """predict decoded with OpenCV directly: no size check at all, so a 30000x30000 PNG of
    zeros (a few MB) became 2.7 GB before the letterbox, and the annotated copy 2.7 GB more."""
    import json

    import torch
    from click.testing import CliRunner

    from test_messages_train_data import _png_claiming
    from trainer.cli import cli
    from trainer.model import YoloV4Tiny

    weights = tmp_path / "w.pth"
    torch.save(YoloV4Tiny(num_classes=2).state_dict(), weights)
    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.full((40, 56, 3), 90, np.uint8))
    (src / "b.png").write_bytes(_png_claiming(30_000, 30_000))
    _tiff_bomb(src / "c.tif")
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["predict", "--weights", str(weights), "--source", str(src),
                                 "--out", str(out), "--input-size", "64"])
    assert r.exit_code == 0, r.output
    data = json.loads((out / "detections.json").read_text())
    assert [i["file"] for i in data["images"]] == ["a.png"]
    assert data["unreadable"] == [str(src / "b.png"), str(src / "c.tif")]
    assert (f"skipping {src / 'b.png'}: 30000x30000 pixels, more than the {MAX_PIXELS:,} the "
            "trainer decodes (a decompression bomb?); shrink it") in r.stderr
    assert sorted(os.listdir(out)) == ["a.png", "detections.json"]

    one = CliRunner().invoke(cli, ["predict", "--weights", str(weights), "--source",
                                   str(src / "b.png"), "--out", str(out), "--input-size", "64"])
    assert one.exit_code == 1, one.output
    assert one.stderr.strip().splitlines()[-1] == (
        f"Error: cannot read image {src / 'b.png'}: 30000x30000 pixels, more than the "
        f"{MAX_PIXELS:,} the trainer decodes (a decompression bomb?); shrink it")


# --------------------------------------------------------------------------- FIFOs

def _in_thread(fn):
    """Run ``fn`` in a thread; ``(finished within 20 s, its exception or None)``."""
    box: list = []

    def run():
        try:
            fn()
            box.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    return (not t.is_alive()), (box[0] if box else None)


def _unblock(fifo) -> None:
    """Open the FIFO for writing once, so a reader stuck in open() returns (test cleanup)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


@pytest.mark.parametrize("cache", ["none", "ram", "disk"])
def test_a_fifo_under_an_images_name_is_refused_not_waited_on(tmp_path, cache):
    """A dataset extracted by tar may hold a FIFO where an image was: open() waited for a
    writer that never comes, and training (or its loader worker) hung for good."""
    from trainer.data.dataset import YoloDataset

    fifo = tmp_path / "000001.jpg"
    os.mkfifo(fifo)
    try:
        def load():
            YoloDataset([f"{fifo} 1,1,20,20,0"], 64, 1, train=False, cache=cache,
                        cache_dir=str(tmp_path / "c"))[0]

        finished, exc = _in_thread(load)
    finally:
        _unblock(fifo)
    assert finished, "the dataset waited on the FIFO"
    assert isinstance(exc, DataError), exc
    assert error_text(exc) == (f"Error: cannot read image {fifo}: not a regular file (a FIFO, "
                               "socket or device); replace it with the image")


def test_a_fifo_under_an_annotations_name_is_refused_not_waited_on(tmp_path):
    """`trainer prepare-voc --mode 2` of a VOCdevkit holding a FIFO at Annotations/ID.xml
    hung for good."""
    from trainer.data.devkit import parse_voc_xml

    fifo = tmp_path / "000001.xml"
    os.mkfifo(fifo)
    try:
        finished, exc = _in_thread(lambda: parse_voc_xml(fifo))
    finally:
        _unblock(fifo)
    assert finished, "the parser waited on the FIFO"
    assert isinstance(exc, DataError), exc
    assert error_text(exc) == (f"Error: cannot read annotation {fifo}: not a regular file (a "
                               "FIFO, socket or device); replace it with the XML file")


# --------------------------------------------------------------------------- the disk cache

def _shipped_cache(tmp_path):
    """A dataset whose image-cache/ came with it (the default data.cache=disk folder lies
    beside the images, and may be pulled from Drive): its entry names are the content keys of
    the images, which whoever made the dataset can compute."""
    from trainer.data.cache import content_key
    from trainer.data.images import read_bytes

    image = tmp_path / "000001.jpg"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    folder = tmp_path / "image-cache"
    folder.mkdir()
    return image, folder / f"{content_key(read_bytes(image), 64)}.rgb"


def test_a_fifo_shipped_as_a_cache_entry_is_written_over_not_waited_on(tmp_path):
    from trainer.data.dataset import YoloDataset

    image, entry = _shipped_cache(tmp_path)
    os.mkfifo(entry)
    line = f"{image} 1,1,20,20,0"
    try:
        box: list = []
        finished, exc = _in_thread(lambda: box.append(
            YoloDataset([line], 64, 1, train=False, cache="disk", cache_dir=str(entry.parent))[0]))
    finally:
        _unblock(entry)
    assert finished, "the cache waited on the FIFO"
    assert exc is None, exc
    plain = YoloDataset([line], 64, 1, train=False)[0]
    assert all(torch_equal(a, b) for a, b in zip(box[0], plain))
    assert entry.is_file()


@pytest.mark.parametrize("header", [(0, 0, 36, 48), (48, 64, 200, 2)], ids=["no-size", "oversized"])
def test_a_cache_entry_whose_header_cannot_be_is_decoded_again(tmp_path, header):
    """An entry of the right length whose header says an image of no size (the boxes were
    divided by 0: a ZeroDivisionError traceback) or larger than the input size (no fitted
    image is) was served as it was."""
    import struct

    from trainer.data.dataset import YoloDataset

    image, entry = _shipped_cache(tmp_path)
    orig_h, orig_w, h, w = header
    entry.write_bytes(struct.pack("<4sIIII", b"TDC1", orig_h, orig_w, h, w) + bytes(h * w * 3))
    line = f"{image} 1,1,20,20,0"
    cached = YoloDataset([line], 64, 1, train=False, cache="disk", cache_dir=str(entry.parent))[0]
    plain = YoloDataset([line], 64, 1, train=False)[0]
    assert all(torch_equal(a, b) for a, b in zip(cached, plain))


def torch_equal(a, b) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.equal(a, b))


# --------------------------------------------------------------------------- huge files

def test_an_image_file_larger_than_any_image_is_refused_before_it_is_read(tmp_path):
    """A sparse file takes no disk (GNU tar ships them as such) and any size when read: a
    dataset's 000001.jpg of 2 GiB (of 20 in the wild) was read whole into every loader
    worker that met it, before OpenCV said it was no image."""
    from trainer.data.images import MAX_FILE_BYTES, read_bytes

    huge = tmp_path / "000001.jpg"
    with open(huge, "wb") as fh:
        fh.truncate(2 << 30)
    assert MAX_FILE_BYTES < 2 << 30
    with pytest.raises(DataError) as refused:
        read_bytes(huge)
    assert error_text(refused.value) == (
        f"Error: cannot read image {huge}: 2.00 GiB, more than the "
        f"{MAX_FILE_BYTES / 2 ** 30:.2f} GiB any image the trainer decodes takes; is it an image?")


def test_an_annotation_larger_than_any_annotation_is_refused_before_it_is_read(tmp_path):
    from trainer.data.devkit import parse_voc_xml

    huge = tmp_path / "000001.xml"
    with open(huge, "wb") as fh:
        fh.write(b"<annotation>")
        fh.truncate(64 << 20)
    with pytest.raises(DataError) as refused:
        parse_voc_xml(huge)
    assert error_text(refused.value) == (f"Error: annotation {huge} is 64.0 MiB, more than a VOC "
                                         "annotation ever is (16 MiB); is it the right file?")


def test_a_killed_cache_fill_leaves_nothing_the_next_run_keeps(tmp_path):
    """A fill killed while writing left `<entry>.rgb.<pid>-<tid>.partial` (the fitted image,
    ~0.4 MB at 416) for good, one per thread and kill, visible to `drivestage push` of the
    folder. Entries are now atomic writes (hidden temporary names, removed by the next fill
    once their process is gone)."""
    from _trainer_proc import start_script
    from trainer.data.cache import DiskCache

    image = tmp_path / "000001.jpg"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    folder = tmp_path / "image-cache"
    # A child that dies (SIGKILL) while its entry's bytes are half written (forked with torch
    # and numpy imported, tests/_trainer_proc.py: a fresh interpreter's imports were most of
    # this test).
    script = tmp_path / "dying.py"
    script.write_text(f"""
import os, signal
import numpy as np
from trainer.data import cache
real = np.ascontiguousarray
def dying(a):
    os.kill(os.getpid(), signal.SIGKILL)
cache.np.ascontiguousarray = dying
cache.DiskCache([{str(image)!r}], 64, {str(folder)!r}, threads=1)
""")
    child = start_script(str(script), [])
    try:
        assert child.wait(timeout=120) == -9
    finally:
        child.kill()
    left = os.listdir(folder)
    assert len(left) == 1 and left[0].startswith("."), left     # hidden: never pushed
    DiskCache([str(image)], 64, folder, threads=1)
    assert [n for n in os.listdir(folder)] == [n for n in os.listdir(folder) if n.endswith(".rgb")]
    assert len(os.listdir(folder)) == 1


# --------------------------------------------------------------------------- OpenCV's gaps

@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_a_tiff_turned_by_its_orientation_tag_is_read_turned(tmp_path, orientation):
    """A guard: OpenCV 5.1's ``imread`` decodes no TIFF whose orientation tag turns it by 90
    degrees ("Internal imread issue"); ``imdecode``, which the trainer uses, does, turned as
    PIL turns it. A change to imread would make every such TIFF "not an image"."""
    from PIL import ImageOps

    from trainer.data.images import decode_fitted, read_bytes, read_image

    rgb = np.random.default_rng(orientation).integers(0, 255, (40, 64, 3), dtype=np.uint8)
    path = tmp_path / f"turned{orientation}.tif"
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert expected.shape == (64, 40, 3)
    np.testing.assert_array_equal(read_image(path), expected)
    image, orig = decode_fitted(read_bytes(path), 32, str(path))
    assert orig == (64, 40) and image.shape == (32, 20, 3)


def test_an_image_linked_to_a_device_is_refused_not_read_forever(tmp_path):
    """`000001.jpg -> /dev/zero` in a dataset from anywhere: read() of a device that never
    ends grew the worker's memory until the system killed it (not run against the old code,
    for that reason)."""
    from trainer.data.images import read_bytes

    link = tmp_path / "000001.jpg"
    link.symlink_to("/dev/zero")
    finished, exc = _in_thread(lambda: read_bytes(link))
    assert finished
    assert isinstance(exc, DataError) and error_text(exc) == (
        f"Error: cannot read image {link}: not a regular file (a FIFO, socket or device); "
        "replace it with the image")
