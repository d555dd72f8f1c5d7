"""One product photo: download (or adopt from disk), verify, normalise to RGB JPEG, hash, save.

Config keys: ``scrape.min_side``, ``scrape.max_bytes``.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from configs.files import atomic_write_bytes
from configs.schema import ScrapeConfig
from core.images import ImageRejected, open_image
from core.phash import perceptual_hash
from scraper.fetch import Fetcher, FetchError

log = logging.getLogger(__name__)

PHOTO_ACCEPT = "image/avif,image/webp,image/*,*/*;q=0.8"


@dataclass(frozen=True)
class CleanImage:
    """A verified photo re-encoded as RGB JPEG."""

    jpeg: bytes
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class Photo:
    """A verified photo, already saved at its destination (deleted again if it proves a duplicate)."""

    image: CleanImage
    phash: str


def clean_image(data: bytes, min_side: int = 100, max_bytes: int = 10_000_000, quality: int = 92) -> CleanImage:
    """Verify a downloaded photo (:func:`core.images.open_image`) and re-encode it as an upright RGB JPEG.

    Raises:
        ImageRejected: see :func:`core.images.open_image`.
    """
    img = open_image(data, min_side, max_bytes)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    jpeg = buf.getvalue()
    return CleanImage(jpeg=jpeg, sha256=hashlib.sha256(jpeg).hexdigest(), width=img.size[0], height=img.size[1])


def fetch_photo(fetcher: Fetcher, url: str, dest: Path, config: ScrapeConfig) -> Photo | str:
    """Download (or adopt from disk), verify and save one photo; returns it or a rejection reason.

    Saved at once, not when the page is done: a kill then loses only the photos still downloading, and the
    next run adopts (and re-judges) whatever is on disk.
    """
    if dest.exists():  # written atomically by an earlier run that died before the manifest caught up
        data = dest.read_bytes()
        try:
            checked = open_image(data, config.min_side, config.max_bytes)
            image = CleanImage(
                jpeg=data, sha256=hashlib.sha256(data).hexdigest(), width=checked.width, height=checked.height
            )
            return Photo(image, perceptual_hash(data))
        except ImageRejected:
            dest.unlink()
    try:
        body = fetcher.get(url, Accept=PHOTO_ACCEPT).content
        image = clean_image(body, config.min_side, config.max_bytes)
    except ImageRejected as exc:
        return exc.reason
    except FetchError as exc:
        log.warning("photo failed: %s", exc)
        return "fetch_failed"
    atomic_write_bytes(dest, image.jpeg)
    return Photo(image, perceptual_hash(image.jpeg))
