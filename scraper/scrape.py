"""The scrape stage: search each class's queries, follow pagination, save verified photos and the manifest.

Re-running continues where the last run stopped: products already in the manifest are not fetched again,
and a photo already on disk (written atomically, so complete) is adopted instead of downloaded.

Config keys: ``project.data_dir``, everything under ``scrape``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

from tqdm import tqdm

from configs.files import atomic_write_bytes, atomic_write_text
from configs.schema import Config
from scraper.fetch import Fetcher, FetchError
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
    rejected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    per_class: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        out = asdict(self)
        out["rejected"], out["skipped"] = dict(self.rejected), dict(self.skipped)
        return out


def search_url(base_url: str, search_path: str, query: str, page: int = 1) -> str:
    """The URL of page ``page`` of a search."""
    params = {"k": query} if page == 1 else {"k": query, "page": page}
    return f"{base_url.rstrip('/')}{search_path}?{urlencode(params)}"


def _fetch_photo(fetcher: Fetcher, result: SearchResult, dest: Path, config: Config) -> CleanImage | str:
    """Download, verify and save one photo; returns the clean image or a rejection reason."""
    if dest.exists():  # written atomically by an earlier run that died before the manifest caught up
        data = dest.read_bytes()
        try:
            checked = clean_image(data, config.scrape.min_side, config.scrape.max_bytes)
            return CleanImage(data, hashlib.sha256(data).hexdigest(), checked.width, checked.height)
        except ImageRejected:
            dest.unlink()
    try:
        body = fetcher.get(result.image_url, Accept="image/avif,image/webp,image/*,*/*;q=0.8").content
        image = clean_image(body, config.scrape.min_side, config.scrape.max_bytes)
    except ImageRejected as exc:
        return exc.reason
    except FetchError as exc:
        log.warning("photo failed: %s", exc)
        return "fetch_failed"
    atomic_write_bytes(dest, image.jpeg)
    return image


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
    mpath = manifest_path(data_dir)
    rows: list[dict] = read_manifest(mpath).to_dict("records")
    known_asins = {str(r["asin"]) for r in rows}
    known_images = {str(r["image_id"]) for r in rows}
    report = ScrapeReport(per_class=Counter(str(r["class"]) for r in rows))
    fetcher = Fetcher(sc)
    base = base_url or sc.base_url
    seen_asins: set[str] = set()
    seen_images: set[str] = set()
    with ThreadPoolExecutor(max_workers=sc.concurrency, thread_name_prefix="stj-photo") as pool:
        for label, spec in sc.classes.items():
            for query in spec.queries:
                url: str | None = search_url(base, sc.search_path, query)
                bar = tqdm(total=sc.max_pages, desc=f"{label}: {query}", unit="page", disable=not show_progress)
                for page in range(1, sc.max_pages + 1):
                    if url is None or (sc.max_images_per_class and report.per_class[label] >= sc.max_images_per_class):
                        break
                    try:
                        html = fetcher.get(url).text
                    except FetchError as exc:
                        report.errors.append(str(exc))
                        log.error("search page failed, moving to the next query: %s", exc)
                        break
                    parsed = parse_search_page(html, url, skip_sponsored=sc.skip_sponsored)
                    report.pages += 1
                    report.skipped.update(parsed.skipped)
                    todo: list[SearchResult] = []
                    for result in parsed.results:
                        report.items += 1
                        image_id = image_id_from_url(result.image_url)
                        if result.asin in known_asins or image_id in known_images:
                            report.already_in_manifest += 1
                        elif result.asin in seen_asins or image_id in seen_images:
                            report.duplicates += 1
                        else:
                            todo.append(result)
                        seen_asins.add(result.asin)
                        seen_images.add(image_id)
                    if sc.max_images_per_class:
                        todo = todo[: max(0, sc.max_images_per_class - report.per_class[label])]
                    dests = [data_dir / "raw" / label / f"{image_id_from_url(r.image_url)}.jpg" for r in todo]
                    outcomes = pool.map(lambda rd: _fetch_photo(fetcher, rd[0], rd[1], config), zip(todo, dests))
                    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
                    for result, dest, outcome in zip(todo, dests, outcomes):
                        if isinstance(outcome, str):
                            report.rejected[outcome] += 1
                            continue
                        rows.append({
                            "class": label, "query": query, "asin": result.asin, "title": result.title,
                            "page": page, "image_url": result.image_url, "image_id": dest.stem,
                            "sha256": outcome.sha256, "width": outcome.width, "height": outcome.height,
                            "path": dest.relative_to(data_dir).as_posix(), "scraped_at": now,
                        })
                        report.saved += 1
                        report.per_class[label] += 1
                    write_manifest(rows, mpath)  # after each page: a kill loses at most one page of rows
                    bar.update(1)
                    url = parsed.next_url
                bar.close()
    report.per_class = dict(report.per_class)
    report.seconds = round(time.monotonic() - started, 2)
    write_manifest(rows, mpath)
    atomic_write_text(data_dir / REPORT_NAME, json.dumps(report.to_dict(), indent=2))
    log.info("scrape done: %s", json.dumps(report.to_dict()))
    return report
