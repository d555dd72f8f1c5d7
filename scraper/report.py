"""What a scrape run did, saved as ``scrape_report.json`` next to the manifest and attached to the MLflow run.

Query threads update one report; every change goes through a method that takes the report's own lock.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ScrapeReport:
    """Counts of pages, items and photos, by outcome."""

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
        with self._lock:
            self.errors.append(message)

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
            f"conflicts {len(self.conflicts)}, already had {self.already_in_manifest}\n"
            f"  rejected: {rejected}; retries {self.retries}, robot checks {self.robot_checks} "
            f"(browser pages {self.browser_pages}), errors {len(self.errors)}"
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
