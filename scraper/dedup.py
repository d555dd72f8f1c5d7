"""Near-duplicate lookups while scraping: the closest photo kept so far to a new one.

Exact duplicates are caught by ASIN and image id (``scraper.collection``); near-duplicates (re-uploads,
crops, recompressions) by the perceptual hash (``core.phash``) within ``scrape.near_duplicate_distance``
bits. A near-copy in the same class is skipped; in another class it is a conflict, kept out of training.

Config keys: ``scrape.near_duplicate_distance``.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.near_index import NearIndex


@dataclass(frozen=True)
class Match:
    """The closest earlier photo to a new one."""

    image_id: str
    label: str
    distance: int


class HashIndex:
    """Perceptual hashes of the photos kept so far, for nearest-match queries through a multi-index hash
    (:class:`core.near_index.NearIndex`): a query costs O(1) look-ups whatever the number kept, so a scrape
    of N photos spends O(N) here, not O(N^2)."""

    def __init__(self, max_distance: int) -> None:
        self.max_distance = max_distance
        self._index = NearIndex(max_distance)

    def add(self, phash: str, image_id: str, label: str) -> None:
        """Remember a kept photo."""
        self._index.add((image_id, label), int(phash, 16))

    def nearest(self, phash: str) -> Match | None:
        """The closest kept photo within ``max_distance`` bits (the first kept among equals), or ``None``
        (always ``None`` when disabled)."""
        best: Match | None = None
        for (image_id, label), distance in self._index.within(int(phash, 16)):
            if best is None or distance < best.distance:
                best = Match(image_id, label, distance)
        return best
