"""Near-duplicate lookups while scraping: the closest photo kept so far to a new one.

Exact duplicates are caught by ASIN and image id (``scraper.collection``); near-duplicates (re-uploads,
crops, recompressions) by the perceptual hash (``core.phash``) within ``scrape.near_duplicate_distance``
bits. A near-copy in the same class is skipped; in another class it is a conflict, kept out of training.

Config keys: ``scrape.near_duplicate_distance``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Match:
    """The closest earlier photo to a new one."""

    image_id: str
    label: str
    distance: int


class HashIndex:
    """Perceptual hashes of the photos kept so far, for nearest-match queries (a linear scan)."""

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
