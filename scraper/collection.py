"""The photos kept so far and everything seen: what is new, a duplicate, a near-duplicate or a conflict.

One object shared by the query threads. Every public method takes its lock, so callers need no rule about
locking. Each page's new rows are appended to the manifest's journal (``core.manifest``), and the manifest is
written once, when the scrape ends: a kill loses at most the page being kept, and keeping a page costs
O(page), not a rewrite of every row.

Config keys: ``scrape.near_duplicate_distance``, ``project.data_dir``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.manifest import ManifestRow, append_journal, manifest_path, write_manifest
from scraper.dedup import HashIndex
from scraper.parse import SearchResult, image_id_from_url
from scraper.photos import Photo
from scraper.report import ScrapeReport


@dataclass(frozen=True)
class Listing:
    """Where a new photo was found: its class, query, page and search result, and where it is saved."""

    label: str
    query: str
    page: int
    result: SearchResult
    dest: Path


class Collection:
    """The manifest rows, and the indexes that decide which search results are worth downloading."""

    def __init__(
        self,
        rows: Sequence[ManifestRow],
        max_distance: int,
        data_dir: Path,
        report: ScrapeReport,
        manifest_file: Path | None = None,
    ) -> None:
        self._rows = {row.image_id: row for row in rows}  # insertion order is the manifest's order
        self._known_asins = {row.asin for row in rows}
        self._seen_asins: set[str] = set()
        self._seen_images = {row.image_id: row.label for row in rows}
        self._hashes = HashIndex(max_distance)
        for row in rows:
            if row.phash:
                self._hashes.add(row.phash, row.image_id, row.label)
        self._data_dir, self._report = data_dir, report
        self._manifest_file = manifest_file or manifest_path(data_dir)  # a scrape task's part: its own file
        self._lock = threading.Lock()
        self._new: list[str] = []  # kept since the journal was last appended to
        self._flagged: list[str] = []  # flagged as conflicts since then
        report.per_class.update(row.label for row in rows)

    @property
    def rows(self) -> list[ManifestRow]:
        """The manifest rows, in order."""
        with self._lock:
            return list(self._rows.values())

    def count(self, label: str) -> int:
        """Photos kept in a class so far."""
        with self._lock:
            return self._report.per_class[label]

    def triage(self, results: list[SearchResult], label: str) -> list[SearchResult]:
        """Count one search page's results and return those never seen before (a photo already listed under
        another class marks a conflict)."""
        todo: list[SearchResult] = []
        with self._lock:
            self._report.pages += 1
            for result in results:
                self._report.items += 1
                self._report.items_per_class[label] += 1
                image_id = image_id_from_url(result.image_url)
                earlier_label = self._seen_images.get(image_id)
                if result.asin in self._known_asins:
                    self._report.already_in_manifest += 1
                elif earlier_label is not None and earlier_label != label:  # the same photo under another class
                    if image_id in self._rows and not self._rows[image_id].conflict:
                        self._mark_conflict(image_id=image_id, label=label, other_id=image_id, distance=0)
                elif result.asin in self._seen_asins or earlier_label is not None:
                    self._report.duplicates += 1
                else:
                    todo.append(result)
                self._seen_asins.add(result.asin)
                self._seen_images.setdefault(image_id, label)
        return todo

    def keep(self, listings: list[Listing], outcomes: list[Photo | str]) -> None:
        """Keep the downloaded photos that are neither near-duplicates nor conflicts, then rewrite the manifest."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            for listing, outcome in zip(listings, outcomes, strict=True):
                self._report.downloaded_per_class[listing.label] += 1
                if isinstance(outcome, str):
                    self._report.rejected[outcome] += 1
                    self._report.rejected_per_class[listing.label] += 1
                elif not self._is_near_copy(listing.label, outcome.phash, listing.dest.stem, listing.dest):
                    self._add(listing, outcome, now)
            self._journal()

    def adopt(self, row: ManifestRow, cap: int | None) -> bool:
        """Keep a photo another scrape task kept on its own (saved, not yet in this manifest) unless the photos
        kept so far make it a duplicate, a near-duplicate, a conflict or one over the class's ``cap``; the
        file of one not kept is removed. Whether it was kept."""
        with self._lock:
            file = self._data_dir / row.path
            earlier_label = self._seen_images.get(row.image_id)
            if earlier_label == row.label:  # the same photo, found by another query of the class: one file
                self._report.duplicates += 1
                return False
            if earlier_label is not None:  # the same photo under another class
                if row.image_id in self._rows and not self._rows[row.image_id].conflict:
                    self._mark_conflict(image_id=row.image_id, label=row.label, other_id=row.image_id, distance=0)
                file.unlink(missing_ok=True)
                return False
            if row.asin in self._known_asins or row.asin in self._seen_asins:
                self._report.duplicates += 1
                file.unlink(missing_ok=True)
                return False
            if (cap and self._report.per_class[row.label] >= cap) or (
                row.phash and self._is_near_copy(row.label, row.phash, row.image_id, file)
            ):
                file.unlink(missing_ok=True)
                return False
            self._rows[row.image_id] = row
            self._seen_asins.add(row.asin)
            self._seen_images[row.image_id] = row.label
            self._index(row)
            return True

    def flag_conflict(self, image_id: str) -> None:
        """Mark a kept photo as a conflict that another scrape task found (its report has the details)."""
        with self._lock:
            if image_id in self._rows:
                self._rows[image_id] = dataclasses.replace(self._rows[image_id], conflict=True)

    def write(self) -> None:
        """Write the manifest (atomically), the journal folded in."""
        with self._lock:
            write_manifest(list(self._rows.values()), self._manifest_file)
            self._new, self._flagged = [], []

    def _journal(self) -> None:
        """Append the rows kept and the conflicts flagged since the last call to the manifest's journal."""
        rows = [self._rows[image_id] for image_id in self._new]
        append_journal(self._manifest_file, rows, [i for i in self._flagged if i not in self._new])
        self._new, self._flagged = [], []

    def _is_near_copy(self, label: str, phash: str, image_id: str, file: Path) -> bool:
        match = self._hashes.nearest(phash)
        if match is None:
            return False
        if match.label == label:
            self._report.near_duplicates += 1
        elif not self._rows[match.image_id].conflict:
            self._mark_conflict(image_id=match.image_id, label=label, other_id=image_id, distance=match.distance)
        file.unlink(missing_ok=True)
        return True

    def _add(self, listing: Listing, photo: Photo, now: str) -> None:
        result, image_id = listing.result, listing.dest.stem
        self._rows[image_id] = ManifestRow(
            label=listing.label,
            query=listing.query,
            asin=result.asin,
            title=result.title,
            page=listing.page,
            image_url=result.image_url,
            image_id=image_id,
            sha256=photo.image.sha256,
            width=photo.image.width,
            height=photo.image.height,
            path=listing.dest.relative_to(self._data_dir).as_posix(),
            scraped_at=now,
            phash=photo.phash,
        )
        self._new.append(image_id)
        self._index(self._rows[image_id])

    def _index(self, row: ManifestRow) -> None:
        """Count a newly kept row and make it findable as a near-duplicate."""
        if row.phash:
            self._hashes.add(row.phash, row.image_id, row.label)
        self._report.saved += 1
        self._report.per_class[row.label] += 1
        self._report.saved_per_class[row.label] += 1

    def _mark_conflict(self, image_id: str, label: str, other_id: str, distance: int) -> None:
        """Flag the kept photo ``image_id`` as also shown under ``label``."""
        row = self._rows[image_id] = dataclasses.replace(self._rows[image_id], conflict=True)
        self._flagged.append(image_id)
        entry = {"image_id": image_id, "class": row.label, "other_image_id": other_id, "other_class": label}
        self._report.add_conflicts([entry | {"distance": distance}], 1)
