"""The one check for untrusted image bytes: the scraper's downloads and the server's uploads both pass here.

Pure: bytes in, an upright 8-bit RGB image (or a rejection with a short reason code) out. Nothing is set
globally: the pixel limit is an argument, checked from the header before any pixel is decoded.

Config keys: ``scrape.min_side``, ``scrape.max_bytes``, ``serve.min_side``.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

MAX_PIXELS = 50_000_000  # more pixels than this is a decompression bomb, whatever the file size
PROGRESSIVE_FACTOR = 3  # a progressive JPEG may declare this many times ``max_decoded_pixels``

_MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"GIF87a": "gif", b"GIF89a": "gif"}


class ImageRejected(ValueError):
    """Bytes that are not a usable photo; ``reason`` is a short code for reports and HTTP errors."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def sniff_format(data: bytes) -> str | None:
    """The image format from the first bytes (``jpeg``, ``png``, ``gif``, ``webp``), ``None`` if not an image."""
    for magic, fmt in _MAGIC.items():
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def to_rgb(img: Image.Image) -> Image.Image:
    """Upright 8-bit RGB: EXIF rotation applied; alpha flattened on white; CMYK, palette, grey, 16-bit converted."""
    img = ImageOps.exif_transpose(img)
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        return img.point(lambda v: v / 256).convert("L").convert("RGB")
    return img.convert("RGB")


def open_image(
    data: bytes,
    min_side: int = 1,
    max_bytes: int | None = None,
    max_pixels: int = MAX_PIXELS,
    fit: int | None = None,
    max_decoded_pixels: int | None = None,
) -> Image.Image:
    """Verify image bytes and decode them (first frame) into an upright 8-bit RGB image.

    The type is sniffed from the bytes (not a name or a header), the declared size is checked against
    ``max_pixels`` before decoding, and Pillow verifies and fully decodes the rest. A JPEG too short to hold
    the pixels it declares (libjpeg would fill the rest with grey) is refused as ``corrupt``.

    For callers that only need a small image (the server: model input), ``fit`` lets a JPEG decode at
    1/2, 1/4 or 1/8 of its size in the DCT domain (Pillow's draft mode) while staying at least ``fit`` on
    each side, and ``max_decoded_pixels`` refuses, before decoding, what would still decode larger; so
    time and memory per image are bounded whatever the upload declares.

    Raises:
        ImageRejected: with reason ``empty``, ``too_large``, ``not_an_image``, ``corrupt``, ``too_small``
            or ``decompression_bomb``.
    """
    if not data:
        raise ImageRejected("empty")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageRejected("too_large", f"{len(data)} bytes")
    if sniff_format(data) is None:
        raise ImageRejected("not_an_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                _check_pixels(probe.size, max_pixels)
                probe.verify()
            img = Image.open(io.BytesIO(data))
            img.seek(0)
            if img.format == "JPEG":
                _check_jpeg_length(len(data), img.size)
                if max_decoded_pixels is not None and img.info.get("progressive"):
                    # libjpeg keeps every DCT coefficient of a progressive JPEG (2-6 bytes per pixel) whatever
                    # the output size: its declared size is what costs memory
                    _check_pixels(img.size, PROGRESSIVE_FACTOR * max_decoded_pixels)
                if fit is not None:
                    img.draft(None, (fit, fit))
            if max_decoded_pixels is not None:
                _check_pixels(img.size, max_decoded_pixels)
            img.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("decompression_bomb", str(exc)) from None
    except Exception as exc:  # Pillow raises many types for broken files
        raise ImageRejected("corrupt", f"{exc.__class__.__name__}: {exc}") from None
    img = to_rgb(img)
    if min(img.size) < min_side:
        raise ImageRejected("too_small", f"{img.size[0]}x{img.size[1]}")
    return img


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    if size[0] * size[1] > max_pixels:
        raise ImageRejected("decompression_bomb", f"{size[0]}x{size[1]} is more than {max_pixels} pixels")


def _check_jpeg_length(n_bytes: int, size: tuple[int, int]) -> None:
    # Every 8x8 luma block codes at least its DC difference, one bit or more in Huffman coding: fewer bytes
    # than blocks/8 cannot hold the declared picture (a cut or crafted file).
    blocks = -(-size[0] // 8) * -(-size[1] // 8)
    if n_bytes * 8 < blocks:
        raise ImageRejected("corrupt", f"truncated: {n_bytes} bytes cannot hold {size[0]}x{size[1]} pixels")


@dataclass(frozen=True)
class CleanImage:
    """A verified photo re-encoded as RGB JPEG."""

    jpeg: bytes
    sha256: str
    width: int
    height: int


def clean_image(
    data: bytes, min_side: int = 100, max_bytes: int = 10_000_000, quality: int = 92, max_pixels: int = MAX_PIXELS
) -> CleanImage:
    """Verify a photo (:func:`open_image`) and re-encode it as an upright RGB JPEG: how the scraper saves every
    photo, and how a user's flagged upload is kept, so the same picture has the same SHA-256 either way.

    ``max_pixels`` refuses, before decoding, a photo declaring more pixels (memory: ~3 bytes a pixel).

    Raises:
        ImageRejected: see :func:`core.images.open_image`.
    """
    img = open_image(data, min_side, max_bytes, max_pixels=max_pixels)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    jpeg = buf.getvalue()
    return CleanImage(jpeg=jpeg, sha256=hashlib.sha256(jpeg).hexdigest(), width=img.size[0], height=img.size[1])
