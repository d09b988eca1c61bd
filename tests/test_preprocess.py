import io

import numpy as np
import pytest
from PIL import Image

from hpcgan.data.formats import decode, encode
from hpcgan.data.pixels import UnreadableImage
from hpcgan.data.preprocess import decode_source, square


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "PNG")
    return buf.getvalue()


def test_crop_takes_the_centre_of_the_long_side():
    tall = np.zeros((600, 300), np.uint8)
    tall[:150] = 255  # top quarter white: cropped away by a centre crop
    out = square(tall, 64, "crop")
    assert out.shape == (64, 64)
    assert out.max() < 30


def test_pad_letterboxes_with_black():
    wide = np.full((300, 600), 200, np.uint8)
    out = square(wide, 64, "pad")
    assert out.shape == (64, 64)
    assert out[:14].max() == 0 and out[-14:].max() == 0  # bars above and below
    assert abs(int(out[32, 32]) - 200) <= 1


def test_never_flips_left_and_right():
    img = np.zeros((400, 500), np.uint8)
    img[:, :100] = 255  # a bright band on the image's left
    out = square(img, 128, "crop")
    assert out[:, :10].mean() > 200 and out[:, -10:].mean() < 5


def test_downscaling_is_antialiased():
    stripes = np.zeros((512, 512), np.uint8)
    stripes[:, ::2] = 255  # 1-px stripes alias badly without a low-pass filter
    out = square(stripes, 64, "crop")
    assert abs(out.mean() - 127.5) < 4 and out.std() < 10


def test_sixteen_bit_is_scaled_to_the_full_range():
    arr = np.linspace(1000, 4000, 64 * 64).reshape(64, 64).astype(np.uint16)
    gray = decode_source(_png(arr))
    assert gray.dtype == np.uint8 and gray.min() == 0 and gray.max() == 255


def test_rgb_becomes_gray():
    rgb = np.stack([np.full((20, 30), v, np.uint8) for v in (10, 10, 10)], axis=-1)
    gray = decode_source(_png(rgb))
    assert gray.shape == (20, 30) and int(gray[0, 0]) == 10


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty"), (b"this is a text file, not a radiograph", "not an image"), (None, "corrupt")],
)
def test_bad_bytes_raise_with_a_reason(data, reason):
    if data is None:
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(buf, "JPEG")
        data = buf.getvalue()[: len(buf.getvalue()) // 2]  # truncated JPEG
    with pytest.raises(UnreadableImage, match=reason):
        decode_source(data)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "raw"])
def test_stored_formats_round_trip(fmt):
    gray = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    ext = {"png": "png", "jpeg": "jpg", "raw": "u8"}[fmt]
    back = decode(encode(gray, fmt), ext, 64)
    assert back.shape == (64, 64)
    if fmt != "jpeg":  # the lossless ones give back every pixel
        assert np.array_equal(back, gray)
