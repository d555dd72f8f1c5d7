"""Perceptual hashes: photos that look alike have hashes a few bits apart.

A 256-bit pHash (16x16 DCT). The larger hash matters for flat product shots: with the common 64-bit hash,
distinct drawings of the local catalog come as close as 4 bits while re-uploads reach 4 too; at 256 bits
distinct ones stay >= 28 apart and re-uploads (resized, recompressed, brightened) within 20 (measured on
360 drawings and 75 re-uploads), either side of the default threshold of 22. The scraper
uses it to drop near-duplicates and flag conflicts; the split keeps near-duplicate groups on one side.

Config keys: ``scrape.near_duplicate_distance``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import imagehash
from PIL import Image

from core.near_index import near_pairs_indexed

HASH_SIZE = 16  # 16x16 = 256 bits


def perceptual_hash(jpeg: bytes) -> str:
    """The 256-bit pHash of an image, as 64 hex digits."""
    with Image.open(io.BytesIO(jpeg)) as img:
        return str(imagehash.phash(img, hash_size=HASH_SIZE))


def near_pairs(phashes: list[str | None], max_distance: int) -> Iterator[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of hashes within ``max_distance`` bits (missing hashes never pair),
    through :class:`core.near_index.NearIndex`: O(N) look-ups, not the O(N^2) of comparing every pair."""
    values = ((i, int(h, 16)) for i, h in enumerate(phashes) if isinstance(h, str) and h)
    return near_pairs_indexed(values, max_distance)
