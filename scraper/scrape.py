"""The scrape stage: search each class's queries, follow pagination, save verified, de-duplicated photos.

Queries run side by side over one shared pool of photo downloads (like a crawler's scheduler), so the pool
stays busy while a query waits for its next search page; politeness is per host, in the fetcher. Per page:
fetch (``scraper.pages``), parse, keep only results never seen (``scraper.collection``), download and
verify the photos concurrently (``scraper.photos``), drop near-duplicates and flag conflicts, rewrite the
manifest. Re-running continues where the last run stopped: products in the manifest are not fetched again,
and a photo already on disk (written atomically, so complete) is adopted instead of downloaded.

Config keys: ``project.data_dir``, everything under ``scrape``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from configs.files import atomic_write_text
from configs.schema import Config
from core.manifest import REPORT_NAME, manifest_path, read_manifest, rows_from_frame
from core.progress import Progress
from scraper.collection import Collection, Listing
from scraper.fetch import Fetcher, FetchError
from scraper.pages import PageSource
from scraper.parse import image_id_from_url, parse_search_page
from scraper.photos import Photo, fetch_photo
from scraper.politeness import HostState
from scraper.report import ScrapeReport

log = logging.getLogger(__name__)


def search_url(base_url: str, search_path: str, query: str) -> str:
    """The URL of a search's first page (later pages come from its "Next" link)."""
    return f"{base_url.rstrip('/')}{search_path}?{urlencode({'k': query})}"


class _Crawl:
    """One scrape run's parts: config, fetchers, the shared photo pool and the collection."""

    def __init__(self, config: Config, pages: PageSource, photos: ThreadPoolExecutor, kept: Collection) -> None:
        self.config, self.pages, self.photos, self.kept = config, pages, photos, kept
        self.stopped = threading.Event()

    def stop(self) -> None:
        """Stop soon: queued photo downloads are dropped, each query ends after its current page."""
        self.stopped.set()
        self.photos.shutdown(wait=False, cancel_futures=True)

    def query(self, label: str, query: str, url: str | None, position: int, show_progress: bool) -> None:
        """Follow one query's result pages until the last page, ``max_pages`` or the class's cap."""
        sc = self.config.scrape
        with Progress(sc.max_pages, f"{label}: {query}", "page", enabled=show_progress, position=position) as bar:
            for page in range(1, sc.max_pages + 1):
                if self.stopped.is_set() or url is None or self._class_full(label):
                    break
                try:
                    html = self.pages.get(url, query)
                except FetchError as exc:
                    self.pages.report.add_error(str(exc))
                    log.error("search page failed, moving to the next query: %s", exc)
                    break
                url = self._keep_page(label, query, page, url, html)
                bar.note(f"{self.kept.count(label)} {label} photos kept")
                bar.update(1)

    def _class_full(self, label: str) -> bool:
        cap = self.config.scrape.max_images_per_class
        return bool(cap) and self.kept.count(label) >= cap

    def _keep_page(self, label: str, query: str, page: int, url: str, html: str) -> str | None:
        """Download and keep the new photos of one result page; the next page's URL (``None``: the last)."""
        sc, data_dir = self.config.scrape, Path(self.config.project.data_dir)
        parsed = parse_search_page(html, url, skip_sponsored=sc.skip_sponsored)
        self.pages.report.add_skipped(parsed.skipped)
        todo = self.kept.triage(parsed.results, label)
        if sc.max_images_per_class:
            todo = todo[: max(0, sc.max_images_per_class - self.kept.count(label))]
        listings = [
            Listing(
                label=label,
                query=query,
                page=page,
                result=r,
                dest=data_dir / "raw" / label / f"{image_id_from_url(r.image_url)}.jpg",
            )
            for r in todo
        ]
        self.kept.keep(listings, list(self.photos.map(self._photo, listings)))
        return parsed.next_url

    def _photo(self, listing: Listing) -> Photo | str:
        return fetch_photo(
            fetcher=self.pages.fetcher, url=listing.result.image_url, dest=listing.dest, config=self.config.scrape
        )


def query_jobs(config: Config) -> list[tuple[str, str]]:
    """Every (class, query) of the config, in order."""
    return [(label, query) for label, spec in config.scrape.classes.items() for query in spec.queries]


def remove_partial_downloads(data_dir: Path) -> None:
    """Delete the temporary files a kill -9 mid-write leaves (complete photos are renamed into place)."""
    for leftover in (data_dir / "raw").rglob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def scrape(
    config: Config,
    base_url: str | None = None,
    show_progress: bool = True,
    jobs: list[tuple[str, str]] | None = None,
    part: Path | None = None,
    hosts: HostState | None = None,
) -> ScrapeReport:
    """Run the scrape stage.

    Args:
        config: the STJ config (``scrape`` and ``project.data_dir`` are used).
        base_url: overrides ``scrape.base_url`` (e.g. a site on an ephemeral port).
        show_progress: draw a progress bar per query.
        jobs: the (class, query) pairs to run; default: all of them.
        part: a scrape task's own manifest file (``scraper.parts``): the manifest is only read, the photos
            kept go to this file and the report beside it (``.json``).
        hosts: where per-host politeness state lives (``scraper.politeness``): default, this process; the
            per-query tasks of one scrape share one across processes, so they never multiply the rate.

    Returns:
        The run report (also written to ``<data_dir>/scrape_report.json``, or beside ``part``).
    """
    started = time.monotonic()
    sc, data_dir = config.scrape, Path(config.project.data_dir)
    if part is None:  # a task leaves them to its flow: another task may be writing its own right now
        remove_partial_downloads(data_dir)
    mpath = manifest_path(data_dir)
    report = ScrapeReport(started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    kept = Collection(
        rows=rows_from_frame(read_manifest(mpath)),
        max_distance=sc.near_duplicate_distance,
        data_dir=data_dir,
        report=report,
        manifest_file=part,
    )
    fetcher = Fetcher(sc, hosts=hosts)
    pages = PageSource(sc, fetcher, report)
    base = base_url or sc.base_url
    jobs = jobs or query_jobs(config)
    try:
        with (
            ThreadPoolExecutor(max_workers=sc.concurrency, thread_name_prefix="stj-photo") as photos,
            ThreadPoolExecutor(max_workers=min(len(jobs), sc.concurrency), thread_name_prefix="stj-query") as qs,
        ):
            crawl = _Crawl(config=config, pages=pages, photos=photos, kept=kept)
            futures = [
                qs.submit(crawl.query, label, query, search_url(base, sc.search_path, query), position, show_progress)
                for position, (label, query) in enumerate(jobs)
            ]
            try:
                for future in futures:
                    future.result()
            except BaseException:  # an interrupt too: the executors would otherwise finish every query first
                crawl.stop()
                for future in futures:
                    future.cancel()
                raise
    finally:
        pages.close()
        kept.write()  # photos saved so far stay listed, however the scrape ended
    report.add(retries=fetcher.retries)
    report.seconds = round(time.monotonic() - started, 2)
    report_file = data_dir / REPORT_NAME if part is None else part.with_suffix(".json")
    atomic_write_text(report_file, json.dumps(report.to_dict(), indent=2))
    log.info("%s", report.summary())
    return report
