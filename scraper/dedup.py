"""Duplicate and conflict detection: the same product or photo seen twice, or one photo under two classes.

Exact duplicates are caught by ASIN and image id; near-duplicates (re-uploads, crops, recompressions) by
a 256-bit perceptual hash (16x16 DCT) within ``scrape.near_duplicate_distance`` bits. The larger hash
matters for flat product shots: with the common 64-bit hash, distinct drawings of the local catalog come
as close as 4 bits while re-uploads reach 4 too; at 256 bits distinct ones stay >= 24 apart and re-uploads
(resized, recompressed, brightened) within 22. A photo under two classes is a
conflict: it is kept out of training and listed in the run report.

Config keys: ``scrape.near_duplicate_distance``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import imagehash
from PIL import Image

HASH_SIZE = 16  # 16x16 = 256 bits


def perceptual_hash(jpeg: bytes) -> str:
    """The 256-bit pHash of an image, as 64 hex digits."""
    with Image.open(io.BytesIO(jpeg)) as img:
        return str(imagehash.phash(img, hash_size=HASH_SIZE))


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def near_pairs(phashes: list[str | None], max_distance: int) -> Iterator[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of hashes within ``max_distance`` bits (missing hashes never pair)."""
    values = [(i, int(h, 16)) for i, h in enumerate(phashes) if isinstance(h, str) and h]
    for k, (i, a) in enumerate(values):
        for j, b in values[k + 1 :]:
            if (a ^ b).bit_count() <= max_distance:
                yield i, j


@dataclass(frozen=True)
class Match:
    """The closest earlier photo to a new one."""

    image_id: str
    label: str
    distance: int


class HashIndex:
    """Perceptual hashes of the photos kept so far, for nearest-match queries."""

    def __init__(self, max_distance: int) -> None:
        self.max_distance = max_distance
        self._entries: list[tuple[int, str, str]] = []  # (hash as int, image_id, label)

    def add(self, phash: str, image_id: str, label: str) -> None:
        """Remember a kept photo."""
        self._entries.append((int(phash, 16), image_id, label))

    def nearest(self, phash: str) -> Match | None:
        """The closest kept photo within ``max_distance`` bits, or ``None`` (always ``None`` when disabled)."""
        if self.max_distance < 0:
            return None
        value = int(phash, 16)
        best: Match | None = None
        for other, image_id, label in self._entries:
            distance = (value ^ other).bit_count()
            if distance <= self.max_distance and (best is None or distance < best.distance):
                best = Match(image_id, label, distance)
        return best
