"""Photos within a Hamming radius of a perceptual hash, found through an index instead of a scan.

Multi-index hashing (Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with Multi-Index Hashing", 2012):
the 256-bit hash is cut into ``m = r // 2 + 1`` chunks for a radius ``r`` (12 for the default 22). Two
hashes within ``r`` bits differ in at most one bit in some chunk (pigeonhole: ``m`` chunks each 2 or more bits
apart would make ``2m > r``), so the candidates of a query are the entries whose chunk equals the query's, or
differs from it in one bit, in at least one chunk: ``m * (bits per chunk + 1)`` table look-ups (276 for the
default), then the exact distance of each candidate. Exact, not approximate: nothing within ``r`` is missed.

Cost: adding O(m); a query O(m * chunk bits + candidates), where candidates are few while N is well under
2^(chunk bits) (2^21 for the default: a random hash meets ~0.3 entries per look-up at N = 600 000), so N
queries take time linear in N, where the scan they replace took O(N^2). Memory: m table entries per hash.
Nothing is persisted: it is built where it is used, in O(N).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator

HASH_BITS = 256
MIN_CHUNK_BITS = 8  # below this the tables stop filtering: a radius that large falls back to a scan


class NearIndex:
    """Hashes (as ints) under keys; which of them lie within ``max_distance`` bits of a query."""

    def __init__(self, max_distance: int, bits: int = HASH_BITS) -> None:
        self.max_distance = max_distance
        chunks = max_distance // 2 + 1
        self._scan = max_distance >= 0 and bits // chunks < MIN_CHUNK_BITS
        if max_distance < 0 or self._scan:
            chunks = 1
        sizes = [bits // chunks + (i < bits % chunks) for i in range(chunks)]
        self._chunks = [(sum(sizes[:i]), size) for i, size in enumerate(sizes)]  # (shift, width)
        self._tables: list[dict[int, list[int]]] = [{} for _ in self._chunks]
        self._hashes: list[int] = []
        self._keys: list[Hashable] = []

    def add(self, key: Hashable, value: int) -> None:
        """Index ``value`` (a hash as an int) under ``key``."""
        slot = len(self._hashes)
        self._hashes.append(value)
        self._keys.append(key)
        for table, (shift, width) in zip(self._tables, self._chunks, strict=True):
            table.setdefault((value >> shift) & ((1 << width) - 1), []).append(slot)

    def within(self, value: int) -> list[tuple[Hashable, int]]:
        """``(key, distance)`` of every indexed hash within ``max_distance`` bits of ``value``, in the order
        they were added; empty when the index is off (a negative radius)."""
        if self.max_distance < 0:
            return []
        slots = range(len(self._hashes)) if self._scan else sorted(self._candidates(value))
        found = []
        for slot in slots:
            distance = (value ^ self._hashes[slot]).bit_count()
            if distance <= self.max_distance:
                found.append((self._keys[slot], distance))
        return found

    def _candidates(self, value: int) -> set[int]:
        seen: set[int] = set()
        for table, (shift, width) in zip(self._tables, self._chunks, strict=True):
            chunk = (value >> shift) & ((1 << width) - 1)
            for probe in (chunk, *(chunk ^ (1 << bit) for bit in range(width))):
                seen.update(table.get(probe, ()))
        return seen


def near_pairs_indexed(values: Iterable[tuple[int, int]], max_distance: int) -> Iterator[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j`` (as given, in order), of ``(i, hash)`` entries within ``max_distance`` bits:
    each entry is looked up among the earlier ones, then added. O(N) look-ups."""
    index = NearIndex(max_distance)
    for i, value in values:
        for j, _ in index.within(value):
            yield (j, i)
        index.add(i, value)
