"""The scrape stage: search each class's queries, follow pagination, save verified, de-duplicated photos.

Per page: fetch (requests, or Chromium after a robot check), parse, drop products already seen, download
the photos concurrently (politeness enforced per host), verify them, drop near-duplicates and flag
cross-class conflicts, save, then rewrite the manifest. Re-running continues where the last run stopped:
products in the manifest are not fetched again, and a photo already on disk (written atomically, so
complete) is adopted instead of downloaded.

Config keys: ``project.data_dir``, everything under ``scrape``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from tqdm import tqdm

from configs.files import atomic_write_bytes, atomic_write_text
from configs.schema import Config
from scraper.browser import BrowserFetcher
from scraper.dedup import HashIndex, perceptual_hash
from scraper.fetch import Fetcher, FetchError, RobotCheck
from scraper.images import CleanImage, ImageRejected, clean_image
from scraper.manifest import REPORT_NAME, manifest_path, read_manifest, write_manifest
from scraper.parse import SearchResult, image_id_from_url, parse_search_page

log = logging.getLogger(__name__)


@dataclass
class ScrapeReport:
    """What a scrape run did, saved as JSON next to the manifest."""

    pages: int = 0
    items: int = 0
    saved: int = 0
    already_in_manifest: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    conflicts: list[dict] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    robot_checks: int = 0
    browser_pages: int = 0
    errors: list[str] = field(default_factory=list)
    per_class: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        """The report as a few human-readable lines."""
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items())) or "none"
        return (
            f"scrape summary ({self.seconds:.1f}s): {self.pages} pages, {self.items} items, {self.saved} saved "
            f"{dict(self.per_class)}\n  duplicates {self.duplicates}, near-duplicates {self.near_duplicates}, "
            f"conflicts {len(self.conflicts)}, already had {self.already_in_manifest}\n"
            f"  rejected: {rejected}; retries {self.retries}, robot checks {self.robot_checks} "
            f"(browser pages {self.browser_pages}), errors {len(self.errors)}"
        )

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        out = asdict(self)
        out["rejected"], out["skipped"] = dict(self.rejected), dict(self.skipped)
        return out


@dataclass(frozen=True)
class Photo:
    """A verified photo, already saved at its destination (deleted again if it proves a duplicate)."""

    image: CleanImage
    phash: str


def search_url(base_url: str, search_path: str, query: str) -> str:
    """The URL of a search's first page (later pages come from its "Next" link)."""
    return f"{base_url.rstrip('/')}{search_path}?{urlencode({'k': query})}"


def _fetch_photo(fetcher: Fetcher, result: SearchResult, dest: Path, config: Config) -> Photo | str:
    """Download (or adopt from disk), verify and save one photo; returns it or a rejection reason.

    Saved at once, not when the page is done: a kill then loses only the photos still downloading, and the
    next run adopts (and re-judges) whatever is on disk.
    """
    sc = config.scrape
    if dest.exists():  # written atomically by an earlier run that died before the manifest caught up
        data = dest.read_bytes()
        try:
            checked = clean_image(data, sc.min_side, sc.max_bytes)
            image = CleanImage(data, hashlib.sha256(data).hexdigest(), checked.width, checked.height)
            return Photo(image, perceptual_hash(data))
        except ImageRejected:
            dest.unlink()
    try:
        body = fetcher.get(result.image_url, Accept="image/avif,image/webp,image/*,*/*;q=0.8").content
        image = clean_image(body, sc.min_side, sc.max_bytes)
    except ImageRejected as exc:
        return exc.reason
    except FetchError as exc:
        log.warning("photo failed: %s", exc)
        return "fetch_failed"
    atomic_write_bytes(dest, image.jpeg)
    return Photo(image, perceptual_hash(image.jpeg))


class PageSource:
    """Search pages by requests or by the browser; a robot check moves that query to the browser."""

    def __init__(self, config: Config, fetcher: Fetcher, report: ScrapeReport) -> None:
        self.sc, self.fetcher, self.report = config.scrape, fetcher, report
        self.browser = BrowserFetcher(self.sc, fetcher.throttle, fetcher.robots)
        self.browser_queries: set[str] = set()
        self._browser_lock = threading.Lock()  # one Chromium, driven by one query thread at a time

    def _browser_page(self, url: str) -> str:
        with self._browser_lock:
            return self.browser.get_page(url)

    def get(self, url: str, query: str) -> str:
        """The HTML of one search page."""
        if self.sc.fetcher == "selenium" or query in self.browser_queries:
            return self._browser_page(url)
        try:
            return self.fetcher.get_page(url)
        except RobotCheck as exc:
            with self._browser_lock:
                self.report.robot_checks += 1
            if self.sc.fetcher == "requests":
                raise
            log.warning(
                "robot check for %r (%s): backing off %.0fs, then using the browser",
                query,
                exc,
                self.sc.robot_backoff_s,
            )
            time.sleep(self.sc.robot_backoff_s)
            self.browser_queries.add(query)
            return self._browser_page(url)

    def close(self) -> None:
        """Release the browser."""
        self.report.browser_pages = self.browser.pages
        self.browser.close()


class Collection:
    """The manifest rows and the indexes used to decide what is new, a duplicate or a conflict."""

    def __init__(self, rows: list[dict], max_distance: int) -> None:
        self.rows = rows
        self.by_image = {str(r["image_id"]): r for r in rows}
        self.known_asins = {str(r["asin"]) for r in rows}
        self.hashes = HashIndex(max_distance)
        for r in rows:
            if isinstance(r.get("phash"), str):
                self.hashes.add(r["phash"], str(r["image_id"]), str(r["class"]))

    def mark_conflict(self, image_id: str, label: str, other_id: str, distance: int, report: ScrapeReport) -> None:
        """Flag the kept photo ``image_id`` as also shown under ``label``."""
        row = self.by_image[image_id]
        row["conflict"] = True
        report.conflicts.append(
            {
                "image_id": image_id,
                "class": row["class"],
                "other_image_id": other_id,
                "other_class": label,
                "distance": distance,
            }
        )


def scrape(config: Config, base_url: str | None = None, show_progress: bool = True) -> ScrapeReport:
    """Run the scrape stage.

    Args:
        config: the STJ config (``scrape`` and ``project.data_dir`` are used).
        base_url: overrides ``scrape.base_url`` (e.g. a catalog on an ephemeral port).
        show_progress: draw a progress bar per query.

    Returns:
        The run report (also written to ``<data_dir>/scrape_report.json``).
    """
    started = time.monotonic()
    sc, data_dir = config.scrape, Path(config.project.data_dir)
    for leftover in (data_dir / "raw").rglob(".*.tmp"):  # a kill -9 mid-write leaves only these
        leftover.unlink()
    mpath = manifest_path(data_dir)
    kept = Collection(read_manifest(mpath).to_dict("records"), sc.near_duplicate_distance)
    report = ScrapeReport(per_class=Counter(str(r["class"]) for r in kept.rows))
    fetcher = Fetcher(sc)
    pages = PageSource(config, fetcher, report)
    base = base_url or sc.base_url
    seen_asins: set[str] = set()
    seen_images: dict[str, str] = {str(r["image_id"]): str(r["class"]) for r in kept.rows}
    jobs = [(label, query) for label, spec in sc.classes.items() for query in spec.queries]
    shared = _Shared(config, pages, fetcher, kept, seen_asins, seen_images, report, threading.Lock())
    try:
        # Queries run side by side (like a crawler's scheduler) so the photo pool stays busy while a
        # query waits for its next search page; politeness is per host in the fetcher, not per query.
        with (
            ThreadPoolExecutor(max_workers=sc.concurrency, thread_name_prefix="stj-photo") as photos,
            ThreadPoolExecutor(max_workers=min(len(jobs), sc.concurrency), thread_name_prefix="stj-query") as qs,
        ):
            futures = [
                qs.submit(
                    _scrape_query,
                    shared,
                    photos,
                    label,
                    query,
                    search_url(base, sc.search_path, query),
                    position,
                    show_progress,
                )
                for position, (label, query) in enumerate(jobs)
            ]
            for future in futures:
                future.result()
    finally:
        pages.close()
    report.per_class = dict(report.per_class)
    report.retries = fetcher.retries
    report.seconds = round(time.monotonic() - started, 2)
    write_manifest(kept.rows, mpath)
    atomic_write_text(data_dir / REPORT_NAME, json.dumps(report.to_dict(), indent=2))
    log.info("%s", report.summary())
    return report


@dataclass
class _Shared:
    """State the query threads share; ``lock`` guards every decision about what to keep."""

    config: Config
    pages: PageSource
    fetcher: Fetcher
    kept: Collection
    seen_asins: set[str]
    seen_images: dict[str, str]
    report: ScrapeReport
    lock: threading.Lock


def _scrape_query(
    shared: _Shared,
    pool: ThreadPoolExecutor,
    label: str,
    query: str,
    url: str | None,
    position: int,
    show_progress: bool,
) -> None:
    config, pages, fetcher, report = shared.config, shared.pages, shared.fetcher, shared.report
    sc, data_dir = config.scrape, Path(config.project.data_dir)
    bar = tqdm(total=sc.max_pages, desc=f"{label}: {query}", unit="page", position=position, disable=not show_progress)
    for page in range(1, sc.max_pages + 1):
        if url is None or (sc.max_images_per_class and report.per_class[label] >= sc.max_images_per_class):
            break
        try:
            html = pages.get(url, query)
        except FetchError as exc:
            with shared.lock:
                report.errors.append(str(exc))
            log.error("search page failed, moving to the next query: %s", exc)
            break
        parsed = parse_search_page(html, url, skip_sponsored=sc.skip_sponsored)
        with shared.lock:
            report.skipped.update(parsed.skipped)
            todo = _new_results(shared, parsed.results, label)
            if sc.max_images_per_class:
                todo = todo[: max(0, sc.max_images_per_class - report.per_class[label])]
        dests = [data_dir / "raw" / label / f"{image_id_from_url(r.image_url)}.jpg" for r in todo]
        outcomes = list(pool.map(lambda rd: _fetch_photo(fetcher, rd[0], rd[1], config), zip(todo, dests, strict=True)))
        with shared.lock:
            _keep(shared, label, query, page, todo, dests, outcomes)
        bar.update(1)
        url = parsed.next_url
    bar.close()


def _new_results(shared: _Shared, results: list[SearchResult], label: str) -> list[SearchResult]:
    """Count a page's results and return those never seen before (call under the lock)."""
    kept, report = shared.kept, shared.report
    report.pages += 1
    todo: list[SearchResult] = []
    for result in results:
        report.items += 1
        image_id = image_id_from_url(result.image_url)
        earlier_label = shared.seen_images.get(image_id)
        if result.asin in kept.known_asins:
            report.already_in_manifest += 1
        elif earlier_label is not None and earlier_label != label:  # the same photo under another class
            if image_id in kept.by_image and not kept.by_image[image_id].get("conflict"):
                kept.mark_conflict(image_id, label, image_id, 0, report)
        elif result.asin in shared.seen_asins or earlier_label is not None:
            report.duplicates += 1
        else:
            todo.append(result)
        shared.seen_asins.add(result.asin)
        shared.seen_images.setdefault(image_id, label)
    return todo


def _keep(
    shared: _Shared,
    label: str,
    query: str,
    page: int,
    todo: list[SearchResult],
    dests: list[Path],
    outcomes: list[Photo | str],
) -> None:
    """Keep the new photos that are neither near-duplicates nor conflicts, then write the manifest (under the lock)."""
    kept, report, data_dir = shared.kept, shared.report, Path(shared.config.project.data_dir)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for result, dest, outcome in zip(todo, dests, outcomes, strict=True):
        if isinstance(outcome, str):
            report.rejected[outcome] += 1
            continue
        match = kept.hashes.nearest(outcome.phash)
        if match is not None:
            if match.label == label:
                report.near_duplicates += 1
            elif not kept.by_image[match.image_id].get("conflict"):
                kept.mark_conflict(match.image_id, label, dest.stem, match.distance, report)
            dest.unlink(missing_ok=True)
            continue
        row = {
            "class": label,
            "query": query,
            "asin": result.asin,
            "title": result.title,
            "page": page,
            "image_url": result.image_url,
            "image_id": dest.stem,
            "sha256": outcome.image.sha256,
            "width": outcome.image.width,
            "height": outcome.image.height,
            "path": dest.relative_to(data_dir).as_posix(),
            "scraped_at": now,
            "phash": outcome.phash,
            "conflict": False,
        }
        kept.rows.append(row)
        kept.by_image[dest.stem] = row
        kept.hashes.add(outcome.phash, dest.stem, label)
        report.saved += 1
        report.per_class[label] += 1
    write_manifest(kept.rows, manifest_path(data_dir))  # after each page: a kill loses at most one page
