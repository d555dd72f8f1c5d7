"""Scrape benchmark: STJ's scraper vs a Scrapy ImagesPipeline spider on the same local catalog.

The catalog runs in its own process with 100 ms latency on every response; both scrapers use the same
concurrency (8 per host, no extra delay), obey robots.txt and save the same full-size photos. STJ runs with
verification, perceptual-hash dedup and manifest writes on. Photos are rendered once before timing.
Each side runs twice, alternating; the faster run of each is reported.

Usage: .venv/bin/python benchmarks/scrape.py [--products 100] [--latency-ms 100] [--concurrency 8]
Needs Scrapy in .venv-scrapy (make bench-venv).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load import free_port, wait_ready  # noqa: E402
from catalog import Catalog  # noqa: E402
from catalog.inventory import image_path  # noqa: E402
from flows.settings import load_run_config  # noqa: E402
from scraper.scrape import scrape  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100, help="products per class")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--scrapy-python", default=str(ROOT / ".venv-scrapy" / "bin" / "python"))
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    catalog_sets = [
        f"catalog.products_per_class={args.products}",
        f"catalog.faults.latency_ms={args.latency_ms}",
        f"catalog.port={port}",
        "catalog.image_side=400",
    ]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "catalog",
            "--config",
            "configs/demo.yaml",
            *[a for s in catalog_sets for a in ("--set", s)],
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        config = load_run_config(ROOT / "configs/demo.yaml", catalog_sets)
        wait_ready(base + "/robots.txt", server)
        _warm(base, Catalog(config.catalog))
        pages_per_query = max(Catalog(config.catalog).page_count(c) for c in config.class_names)
        queries = [q for spec in config.scrape.classes.values() for q in spec.queries]
        ours, theirs = [], []
        for _ in range(2):
            ours.append(_run_ours(config, base, args.concurrency, pages_per_query))
            theirs.append(_run_scrapy(args.scrapy_python, base, args.concurrency, pages_per_query, queries))
    finally:
        server.terminate()
        server.wait()
    for name, runs in (("stj", ours), ("scrapy", theirs)):
        if not all(r["images"] for r in runs):  # a ratio over nothing is no figure
            sys.exit(f"benchmark failed: {name} saved no images ({runs}); for Scrapy: make bench-venv")
    best_ours = min(ours, key=lambda r: r["seconds"])
    best_theirs = min(theirs, key=lambda r: r["seconds"])
    print(f"catalog: {args.products} products/class, {args.latency_ms} ms latency, concurrency {args.concurrency}")
    for name, r in (("stj", best_ours), ("scrapy", best_theirs)):
        print(
            f"{name:7s} {r['seconds']:6.2f} s  pages {r['pages']:3d} ({r['pages'] / r['seconds']:5.2f}/s)  "
            f"images {r['images']:4d} ({r['images'] / r['seconds']:6.2f}/s)"
        )
    ratio = (best_ours["images"] / best_ours["seconds"]) / (best_theirs["images"] / best_theirs["seconds"])
    print(f"ratio stj/scrapy (images/s): {ratio:.2f}")
    print(json.dumps({"stj": best_ours, "scrapy": best_theirs, "ratio_images_per_s": round(ratio, 3)}))


def _warm(base: str, catalog: Catalog) -> None:
    ids = [p.image_id for items in catalog.products.values() for p in items]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: requests.get(base + image_path(i, None), timeout=60), ids))


def _run_ours(config, base: str, concurrency: int, max_pages: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run = load_run_config(
            ROOT / "configs/demo.yaml",
            [
                f"project.data_dir={tmp}",
                f"scrape.concurrency={concurrency}",
                "scrape.delay_s=0",
                f"scrape.per_host_concurrency={concurrency}",  # as Scrapy's CONCURRENT_REQUESTS_PER_DOMAIN
                "scrape.autothrottle=false",  # Scrapy's default
                f"scrape.max_pages={max_pages}",
                f"scrape.base_url={base}",
            ],
        )
        started = time.monotonic()
        report = scrape(run, base_url=base, show_progress=False)
        return {"seconds": time.monotonic() - started, "pages": report.pages, "images": report.saved}


def _run_scrapy(python: str, base: str, concurrency: int, max_pages: int, queries: list[str]) -> dict:
    tmp = tempfile.mkdtemp()
    try:
        out = subprocess.run(
            [
                python,
                str(ROOT / "benchmarks" / "scrapy_spider.py"),
                base,
                tmp,
                str(concurrency),
                str(max_pages),
                *queries,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
