"""The scrape manifest: one CSV row per saved photo, the contract between scraping and training.

:class:`ManifestRow` is the one definition of a row; the CSV's columns are its fields, in order. ``path``
is relative to the data folder; ``phash`` is the 256-bit perceptual hash in hex; ``conflict`` means the
photo was also listed under another class (kept out of training). The file is rewritten atomically, so it
always matches the files on disk. Beside it the scraper writes its run report (``scrape_report.json``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from configs.files import atomic_write_text

MANIFEST_NAME = "manifest.csv"
REPORT_NAME = "scrape_report.json"


@dataclass(frozen=True)
class ManifestRow:
    """One saved photo and where it came from."""

    label: str  # the class; the CSV column is ``class``
    query: str
    asin: str
    title: str
    page: int
    image_url: str
    image_id: str
    sha256: str
    width: int
    height: int
    path: str
    scraped_at: str
    phash: str | None = None
    conflict: bool = False

    def as_record(self) -> dict[str, object]:
        """The row as the CSV holds it (``label`` under its column name ``class``)."""
        record = dataclasses.asdict(self)
        record["class"] = record.pop("label")
        return {column: record[column] for column in COLUMNS}


COLUMNS = ["class" if f.name == "label" else f.name for f in dataclasses.fields(ManifestRow)]
_ADDED_LATER = {"phash": None, "conflict": False}  # manifests written before these columns existed
_TEXT = {"asin": str, "image_id": str, "sha256": str, "title": str, "phash": str, "query": str}


def manifest_path(data_dir: str | Path) -> Path:
    """Where the manifest lives under a data folder."""
    return Path(data_dir) / MANIFEST_NAME


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Load a manifest; an absent file is an empty manifest with the right columns.

    Raises:
        ValueError: the file lacks columns of :data:`COLUMNS`.
    """
    file = Path(path)
    if not file.exists():
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.read_csv(file, dtype=_TEXT)
    for column, default in _ADDED_LATER.items():
        if column not in frame:
            frame[column] = default
    frame["conflict"] = frame["conflict"].astype(bool)
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{file}: not an STJ manifest (missing columns {sorted(missing)})")
    return frame[COLUMNS]


def rows_from_frame(frame: pd.DataFrame) -> list[ManifestRow]:
    """Typed rows of a manifest frame (as :func:`read_manifest` returns it)."""
    rows = []
    for record in frame.to_dict("records"):
        record["label"] = record.pop("class")
        record["phash"] = record["phash"] if isinstance(record["phash"], str) else None
        rows.append(ManifestRow(**record))
    return rows


def write_manifest(rows: list[ManifestRow] | pd.DataFrame, path: str | Path) -> Path:
    """Write the manifest atomically, rows in the given order."""
    if isinstance(rows, pd.DataFrame):
        frame = rows
    else:
        frame = pd.DataFrame([row.as_record() for row in rows], columns=COLUMNS)
    return atomic_write_text(path, frame[COLUMNS].to_csv(index=False))
