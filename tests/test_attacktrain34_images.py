"""attacktrain34: a JPEG cut short (a copy or download that did not finish) was refused as
`the file is missing or not an image`, though it is there and its header names its size:
the user looked for a missing file. It names what it is now."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from _messages import error_text
from trainer.data.images import read_image
from trainer.errors import DataError


@pytest.mark.parametrize("part", [0.02, 0.6])
def test_a_jpeg_cut_short_is_said_damaged_not_missing(tmp_path, part):
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3)).astype(np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    cut = tmp_path / "000001.jpg"
    cut.write_bytes(data[: int(len(data) * part)])
    with pytest.raises(DataError) as refused:
        read_image(cut)
    assert error_text(refused.value) == (
        f"Error: cannot read image {cut}: its header says 320x240, but its pixels cannot be "
        "decoded (the file is cut short or damaged: a copy or download that did not finish?)")
