"""One frame at a time: bytes -> hero mask -> centroid."""

import io

import numpy as np
import torch
from PIL import Image

from followme.inference import HeroSegmenter, hero_centroid
from followme.models import create_model


def test_centroid_of_the_largest_blob():
    hero = np.zeros((20, 20), bool)
    hero[2:4, 2:4] = True  # 4 px
    hero[10:16, 6:10] = True  # 24 px: the largest
    assert hero_centroid(hero) == (12.5, 7.5)
    assert hero_centroid(hero, min_pixels=28) is None


def test_segmenter_takes_jpeg_bytes():
    buf = io.BytesIO()
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(buf, "JPEG")
    torch.manual_seed(0)
    seg = HeroSegmenter(create_model("seed"), image_size=64)
    hero, centroid = seg(buf.getvalue())
    assert hero.shape == (64, 64) and hero.dtype == bool
    assert centroid is None or all(0 <= v < 64 for v in centroid)


def test_decoding_resizes_as_the_course_did():
    from followme.data.resize import resize_image
    from followme.inference import decode_jpeg

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(buf, "JPEG")
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        full = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(decode_jpeg(buf.getvalue(), 160), resize_image(full, 160))
    np.testing.assert_array_equal(decode_jpeg(buf.getvalue(), 256), full)
