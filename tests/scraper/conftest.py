"""Helpers for the scraper's tests: manifest rows whose photos exist, and hashes a known distance apart."""

from __future__ import annotations

from pathlib import Path

from core.manifest import ManifestRow

FAR = "0" * 64  # pHashes: FAR and NEAR are 1 bit apart, OTHER is 128 bits from both
NEAR = "0" * 63 + "1"
OTHER = "f" * 32 + "0" * 32


def saved_row(label: str, image_id: str, asin: str, phash: str, data: Path, conflict: bool = False) -> ManifestRow:
    """A manifest row whose photo file exists under ``data``."""
    path = data / "raw" / label / f"{image_id}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"jpeg")
    return ManifestRow(
        label=label, query=label, asin=asin, title="t", page=1, image_url=f"https://x/{image_id}.jpg",
        image_id=image_id, sha256=image_id * 4, width=300, height=300, path=f"raw/{label}/{image_id}.jpg",
        scraped_at="2026-11-24T00:00:00+00:00", phash=phash, conflict=conflict,
    )  # fmt: skip
