"""One product photo: download (or adopt from disk), verify, normalise to RGB JPEG, hash, save.

Config keys: ``scrape.min_side``, ``scrape.max_bytes``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from configs.files import atomic_write_bytes
from configs.schema import ScrapeConfig
from core.images import CleanImage, ImageRejected, clean_image, open_image
from core.phash import perceptual_hash
from scraper.fetch import Fetcher, FetchError

log = logging.getLogger(__name__)

PHOTO_ACCEPT = "image/avif,image/webp,image/*,*/*;q=0.8"


@dataclass(frozen=True)
class Photo:
    """A verified photo, already saved at its destination (deleted again if it proves a duplicate)."""

    image: CleanImage
    phash: str


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
