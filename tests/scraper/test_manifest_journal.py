"""The manifest during a scrape: each page's rows are appended to a journal, the CSV is written once at the
end, and whatever a kill leaves (CSV, journal, a line cut short) reads back as every finished page, once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from core.manifest import append_journal, journal_path, manifest_path, read_manifest, rows_from_frame, write_manifest
from scraper.collection import Collection, Listing
from scraper.parse import SearchResult
from scraper.report import ScrapeReport
from tests.scraper.conftest import FAR, OTHER, saved_row


class _Photo:
    """What ``Collection.keep`` reads of a downloaded photo."""

    def __init__(self, phash: str) -> None:
        self.phash = phash
        self.image = dataclasses.make_dataclass("Image", ["sha256", "width", "height"])("s" * 64, 300, 300)


def _listing(data: Path, label: str, image_id: str, asin: str) -> Listing:
    dest = data / "raw" / label / f"{image_id}.jpg"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(b"jpeg")
    result = SearchResult(asin=asin, title="t", image_url=f"https://x/{image_id}.jpg", sponsored=False, position=1)
    return Listing(label=label, query=label, page=1, result=result, dest=dest)


def test_pages_are_journaled_and_the_manifest_is_written_once(tmp_path: Path) -> None:
    old = saved_row("saree", "old1", "A0", OTHER, tmp_path)
    write_manifest([old], manifest_path(tmp_path))
    written = manifest_path(tmp_path).stat().st_mtime_ns
    kept = Collection([old], 22, tmp_path, ScrapeReport())
    kept.keep([_listing(tmp_path, "jeans", "new1", "A1")], [_Photo(FAR)])
    kept.keep([_listing(tmp_path, "trousers", "new2", "A2")], [_Photo(FAR)])  # near new1, another class
    assert manifest_path(tmp_path).stat().st_mtime_ns == written  # not rewritten per page
    assert len(journal_path(manifest_path(tmp_path)).read_text().splitlines()) == 2  # a row, then a conflict
    mid_scrape = rows_from_frame(read_manifest(manifest_path(tmp_path)))
    assert [(r.image_id, r.conflict) for r in mid_scrape] == [("old1", False), ("new1", True)]
    kept.write()
    assert not journal_path(manifest_path(tmp_path)).exists()
    assert rows_from_frame(read_manifest(manifest_path(tmp_path))) == mid_scrape


def test_what_a_kill_leaves_reads_as_every_finished_page_once(tmp_path: Path) -> None:
    file = manifest_path(tmp_path)
    first, second = saved_row("saree", "a", "A1", FAR, tmp_path), saved_row("jeans", "b", "A2", OTHER, tmp_path)
    append_journal(file, [first], [])  # no CSV yet: the first scrape was killed after a page
    append_journal(file, [second], ["a"])
    with open(journal_path(file), "a") as journal:
        journal.write('{"row": {"class": "saree", "image_id": "c", "as')  # cut short by the kill
    rows = rows_from_frame(read_manifest(file))
    assert [(r.image_id, r.conflict) for r in rows] == [("a", True), ("b", False)]
    write_manifest(rows, file)
    append_journal(file, [second], [])  # killed after the CSV was written, before the journal went
    assert rows_from_frame(read_manifest(file)) == rows  # replayed rows are not listed twice
