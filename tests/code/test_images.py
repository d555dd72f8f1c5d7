"""Photo verification and normalisation: every rejection has its reason; odd modes become RGB JPEG."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from core.images import ImageRejected, clean_image, open_image, sniff_format


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_jpeg_roundtrip_and_hash() -> None:
    data = _encode(Image.new("RGB", (300, 200), (10, 120, 200)), "JPEG")
    clean = clean_image(data)
    assert (clean.width, clean.height) == (300, 200)
    assert sniff_format(clean.jpeg) == "jpeg"
    assert len(clean.sha256) == 64


@pytest.mark.parametrize("mode", ["RGBA", "P", "CMYK", "L", "I;16"])
def test_modes_become_rgb(mode: str) -> None:
    img = Image.new("RGB", (160, 160), (200, 30, 30)).convert(mode if mode != "I;16" else "L")
    if mode == "I;16":
        img = Image.fromarray((np.full((160, 160), 40000)).astype(np.uint16))
    fmt = "JPEG" if mode in ("CMYK", "L") else "PNG"
    clean = clean_image(_encode(img, fmt))
    assert Image.open(io.BytesIO(clean.jpeg)).mode == "RGB"


def test_exif_orientation_applied() -> None:
    img = Image.new("RGB", (300, 150), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    clean = clean_image(_encode(img, "JPEG", exif=exif.tobytes()))
    assert (clean.width, clean.height) == (150, 300)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"<html><body>Enter the characters you see below</body></html>", "not_an_image"),
        (_encode(Image.new("RGB", (400, 400)), "JPEG")[:300], "corrupt"),
        (_encode(Image.new("RGB", (50, 400)), "JPEG"), "too_small"),
    ],
)
def test_rejections(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as err:
        clean_image(data, min_side=100)
    assert err.value.reason == reason


def test_too_large_body() -> None:
    with pytest.raises(ImageRejected) as err:
        noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
        clean_image(_encode(Image.fromarray(noise), "PNG"), max_bytes=4096)
    assert err.value.reason == "too_large"


def _jpeg(size: tuple[int, int], **options) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "JPEG", **options)
    return buf.getvalue()


def test_a_jpeg_too_short_for_its_declared_size_is_refused() -> None:
    """libjpeg would fill the missing rows with grey; the byte count cannot hold the declared blocks."""
    data = bytearray(_jpeg((64, 64)))
    at = data.find(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", 4000, 4000)
    with pytest.raises(ImageRejected) as caught:
        open_image(bytes(data))
    assert caught.value.reason == "corrupt" and "truncated" in caught.value.detail


def test_fit_decodes_a_large_jpeg_reduced_in_the_dct_domain() -> None:
    data = _jpeg((4000, 3000), quality=30)
    assert open_image(data).size == (4000, 3000)
    reduced = open_image(data, fit=448, max_decoded_pixels=1_000_000)
    assert reduced.size == (1000, 750)  # 1/4: the smallest scale that stays >= 448 on each side
    assert np.asarray(reduced)[200, 200].tolist() == pytest.approx([200, 30, 30], abs=3)


def test_decoded_pixel_limit_refuses_before_decoding() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (3000, 3000)).save(buf, "PNG")
    with pytest.raises(ImageRejected) as caught:
        open_image(buf.getvalue(), max_decoded_pixels=4_000_000)
    assert caught.value.reason == "decompression_bomb"
    progressive = _jpeg((3000, 3000), progressive=True)  # coefficients are kept whole: its declared size counts
    with pytest.raises(ImageRejected):
        open_image(progressive, fit=224, max_decoded_pixels=2_000_000)
    assert open_image(progressive, fit=224, max_decoded_pixels=4_000_000).size == (375, 375)
