"""The local catalog's own settings: what it sells and how it misbehaves. Not part of the stages' schema.

A config file's optional ``catalog:`` section is validated by :class:`CatalogConfig` (the ``stj`` command's
schema, ``flows.settings.RunConfig``, composes it with the stages' sections). The stages never see it: the
scraper only knows a base URL.

Config keys: everything under ``catalog``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DRAWN_CLASSES = ("saree", "trousers", "jeans")  # the garments the catalog can draw


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaultConfig(_Strict):
    """Make the local catalog misbehave like the real site. Faults are chosen per URL by a hash, so they
    are deterministic: a test knows exactly which pages and photos are affected."""

    error_rate: float = Field(default=0.0, ge=0, le=1, description="URLs whose first request answers 503")
    latency_ms: int = Field(default=0, ge=0, le=10_000, description="added to every response (ms): a slow site")
    robot_check_first: bool = Field(default=False, description="first search request of each query gets a captcha")
    truncated_rate: float = Field(default=0.0, ge=0, le=1, description="photos served cut short")
    fake_image_rate: float = Field(default=0.0, ge=0, le=1, description="photos served as HTML with image/jpeg")
    photo_fault_classes: list[str] = Field(
        default_factory=list, description="classes whose photos get the photo faults (truncated, fake); empty: all"
    )
    lazy_images: bool = Field(default=False, description="img src is a placeholder; the URL is in data-src")
    robots_disallow: list[str] = Field(default_factory=list, description="extra Disallow lines in robots.txt")


class CatalogConfig(_Strict):
    """The local Amazon-like catalog served for offline runs (``catalog``)."""

    host: str = Field(default="127.0.0.1", description="address the local catalog listens on")
    port: int = Field(default=8765, ge=0, le=65535, description="port of the local catalog (0: any free one)")
    seed: int = Field(default=7, description="seeds the drawn products: the same seed, the same catalog")
    products_per_class: int = Field(default=200, ge=1, description="products listed per class")
    results_per_page: int = Field(default=24, ge=2, description="results on each search page")
    sponsored_per_page: int = Field(default=2, ge=0, description="sponsored results among them")
    repeats_per_page: int = Field(default=1, ge=0, description="results repeated from earlier pages")
    image_side: int = Field(default=400, ge=32, description="longest side of the drawn photos (pixels)")
    near_duplicates_per_class: int = Field(default=0, ge=0, description="extra listings re-using a photo, altered")
    cross_class_duplicates: int = Field(default=0, ge=0, description="listings showing another class's photo")
    mislabelled_per_class: int = Field(
        default=0, ge=0, description="listings of a class showing a new photo of another class (see /truth.json)"
    )
    photo_cache_dir: str | None = Field(
        default=None,
        description="keep drawn photos as JPEG files here and serve them from there (benchmarks: the scrape is "
        "then timed without the drawing)",
    )
    faults: FaultConfig = FaultConfig()
