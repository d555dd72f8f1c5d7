"""The scrape manifest: one CSV row per saved photo, the contract between scraping and training.

:class:`ManifestRow` is the one definition of a row; the CSV's columns are its fields, in order. ``path``
is relative to the data folder; ``phash`` is the 256-bit perceptual hash in hex; ``conflict`` means the
photo was also listed under another class (kept out of training); ``source`` is ``scrape``, or ``upload`` for
a user's photo a reviewer added (``core.label_overrides``). The file is written atomically, once at
the end of a scrape; while one runs, each page's new rows (and conflicts found) are appended to a journal
beside it (``manifest.journal``, JSON lines, flushed to disk per page), which :func:`read_manifest` replays:
a scrape killed at any point keeps every page it finished, and costs O(page) per page instead of rewriting
O(N) rows. Beside it the scraper writes its run report (``scrape_report.json``).
"""

from __future__ import annotations

import dataclasses
import json
import os
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
    source: str = "scrape"  # "upload": a user's flagged photo a reviewer added (``core.label_overrides``)

    def as_record(self) -> dict[str, object]:
        """The row as the CSV holds it (``label`` under its column name ``class``)."""
        record = dataclasses.asdict(self)
        record["class"] = record.pop("label")
        return {column: record[column] for column in COLUMNS}


COLUMNS = ["class" if f.name == "label" else f.name for f in dataclasses.fields(ManifestRow)]
_ADDED_LATER = {"phash": None, "conflict": False, "source": "scrape"}  # manifests written before these columns existed
_TEXT = {"asin": str, "image_id": str, "sha256": str, "title": str, "phash": str, "query": str, "source": str}


def manifest_path(data_dir: str | Path) -> Path:
    """Where the manifest lives under a data folder."""
    return Path(data_dir) / MANIFEST_NAME


def journal_path(manifest_file: str | Path) -> Path:
    """Where the rows kept since ``manifest_file`` was last written are journaled."""
    return Path(manifest_file).with_suffix(".journal")


def append_journal(manifest_file: str | Path, rows: list[ManifestRow], conflicts: list[str]) -> None:
    """Append new ``rows`` and the image ids newly flagged as ``conflicts`` to the manifest's journal, then
    flush them to disk. O(len(rows) + len(conflicts))."""
    lines = [json.dumps({"row": row.as_record()}) for row in rows]
    lines += [json.dumps({"conflict": image_id}) for image_id in conflicts]
    if not lines:
        return
    with open(journal_path(manifest_file), "a", encoding="utf-8") as journal:
        journal.write("\n".join(lines) + "\n")
        journal.flush()
        os.fsync(journal.fileno())


def _replay_journal(frame: pd.DataFrame, journal: Path) -> pd.DataFrame:
    """``frame`` with the journal's rows (new ones appended, known ones replaced) and conflict flags; a last line
    cut short by a kill is ignored. O(rows + journal)."""
    records = {record["image_id"]: record for record in frame.to_dict("records")}
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # the line being written when the scrape was killed
            continue
        if "row" in entry:
            records[entry["row"]["image_id"]] = entry["row"]
        elif entry.get("conflict") in records:
            records[entry["conflict"]]["conflict"] = True
    return pd.DataFrame(list(records.values()), columns=COLUMNS)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Load a manifest, with the rows its journal holds (a scrape under way, or killed); an absent file is an
    empty manifest with the right columns.

    Raises:
        ValueError: the file lacks columns of :data:`COLUMNS`.
    """
    file = Path(path)
    journal = journal_path(file)
    if not file.exists() and not journal.exists():
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.read_csv(file, dtype=_TEXT) if file.exists() else pd.DataFrame(columns=COLUMNS)
    if journal.exists():
        frame = _replay_journal(frame, journal)
    for column, default in _ADDED_LATER.items():
        if column not in frame:
            frame[column] = default
    frame["source"] = frame["source"].fillna("scrape")  # journal lines written before the column existed
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
    """Write the manifest atomically, rows in the given order; its journal, now folded in, is removed."""
    if isinstance(rows, pd.DataFrame):
        frame = rows
    else:
        frame = pd.DataFrame([row.as_record() for row in rows], columns=COLUMNS)
    written = atomic_write_text(path, frame[COLUMNS].to_csv(index=False))
    journal_path(path).unlink(missing_ok=True)  # after the write: a kill between replays rows already listed
    return written
