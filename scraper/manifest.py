"""The scrape manifest: one CSV row per saved image, the contract between scraping and training.

Columns: class, query, asin, title, page, image_url, image_id, sha256, width, height, path, scraped_at,
phash (256-bit perceptual hash, hex), conflict (the photo was also listed under another class: kept out of
training). ``path`` is relative to the data folder. The file is rewritten atomically, so it always matches the files.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from configs.files import atomic_write_text

COLUMNS = [
    "class",
    "query",
    "asin",
    "title",
    "page",
    "image_url",
    "image_id",
    "sha256",
    "width",
    "height",
    "path",
    "scraped_at",
    "phash",
    "conflict",
]
ADDED_LATER = {"phash": None, "conflict": False}
MANIFEST_NAME = "manifest.csv"
REPORT_NAME = "scrape_report.json"


def manifest_path(data_dir: str | Path) -> Path:
    """Where the manifest lives under a data folder."""
    return Path(data_dir) / MANIFEST_NAME


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Load a manifest; an absent file is an empty manifest with the right columns."""
    file = Path(path)
    if not file.exists():
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.read_csv(file, dtype={"asin": str, "image_id": str, "sha256": str, "title": str, "phash": str})
    for column, default in ADDED_LATER.items():  # manifests written before these columns existed
        if column not in frame:
            frame[column] = default
    frame["conflict"] = frame["conflict"].astype(bool)
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{file}: not an STJ manifest (missing columns {sorted(missing)})")
    return frame[COLUMNS]


def write_manifest(rows: list[dict] | pd.DataFrame, path: str | Path) -> Path:
    """Write the manifest atomically, rows in the given order."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=COLUMNS)
    return atomic_write_text(path, frame[COLUMNS].to_csv(index=False))
