"""What a scrape run did, saved as ``scrape_report.json`` next to the manifest and attached to the MLflow run.

Query threads update one report; every change goes through a method that takes the report's own lock.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from dataclasses import dataclass, field

LISTED_AT_MOST = 100  # conflicts and errors listed by name (all are counted): the report stays small at any N


@dataclass
class ScrapeReport:
    """Counts of pages, items and photos, by outcome."""

    pages: int = 0
    items: int = 0
    saved: int = 0
    already_in_manifest: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    conflicts: list[dict] = field(default_factory=list)  # the first LISTED_AT_MOST; conflict_count has them all
    conflict_count: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    robot_checks: int = 0
    browser_pages: int = 0
    errors: list[str] = field(default_factory=list)  # the first LISTED_AT_MOST; error_count has them all
    error_count: int = 0
    per_class: Counter[str] = field(default_factory=Counter)  # photos kept, this run's and earlier ones
    items_per_class: Counter[str] = field(default_factory=Counter)  # search results seen this run
    downloaded_per_class: Counter[str] = field(default_factory=Counter)  # photos fetched this run
    rejected_per_class: Counter[str] = field(default_factory=Counter)
    saved_per_class: Counter[str] = field(default_factory=Counter)  # photos new this run
    started_at: str = ""
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to counters, e.g. ``add(pages=1, items=24)``."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def add_error(self, message: str) -> None:
        """Record a page or photo that failed for good."""
        self.add_errors([message], 1)

    def add_errors(self, messages: list[str], count: int) -> None:
        """Count ``count`` failures; list the first of ``messages`` while fewer than LISTED_AT_MOST are listed."""
        with self._lock:
            self.error_count += count
            _extend_capped(self.errors, messages)

    def add_conflicts(self, entries: list[dict], count: int) -> None:
        """Count ``count`` photos listed under two classes; list the first of ``entries`` while fewer than
        LISTED_AT_MOST are listed."""
        with self._lock:
            self.conflict_count += count
            _extend_capped(self.conflicts, entries)

    def add_skipped(self, reasons: Counter[str]) -> None:
        """Record search-page blocks left out (sponsored, no ASIN, no image), by reason."""
        with self._lock:
            self.skipped.update(reasons)

    def summary(self) -> str:
        """The report as a few human-readable lines."""
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items())) or "none"
        return (
            f"scrape summary ({self.seconds:.1f}s): {self.pages} pages, {self.items} items, {self.saved} saved "
            f"{dict(self.per_class)}\n  duplicates {self.duplicates}, near-duplicates {self.near_duplicates}, "
            f"conflicts {self.conflict_count}, already had {self.already_in_manifest}\n"
            f"  rejected: {rejected}; retries {self.retries}, robot checks {self.robot_checks} "
            f"(browser pages {self.browser_pages}), errors {self.error_count}"
        )

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        with self._lock:
            out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
            counters = [f.name for f in dataclasses.fields(self) if f.default_factory is Counter]
            for name in counters:
                out[name] = dict(out[name])
            out["conflicts"], out["errors"] = list(out["conflicts"]), list(out["errors"])
            return out


def _extend_capped(listed: list, items: list) -> None:
    listed.extend(items[: max(0, LISTED_AT_MOST - len(listed))])
