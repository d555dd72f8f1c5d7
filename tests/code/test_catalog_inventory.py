"""The catalog grows by appending: more products per class keeps every listing of the smaller catalog, so a
weekly re-scrape of a grown catalog finds exactly the new listings."""

from __future__ import annotations

import pytest

from catalog.inventory import Catalog
from catalog.settings import CatalogConfig

EXTRAS = {"near_duplicates_per_class": 2, "cross_class_duplicates": 1, "mislabelled_per_class": 2}


def _listings(catalog: Catalog, label: str) -> set[tuple]:
    return {(p.asin, p.image_id, p.drawing, p.title, p.price) for p in catalog.products[label]}


def _organic(catalog: Catalog, label: str) -> list:
    return [p for p in catalog.products[label] if not p.variant and not p.photo_label]


@pytest.mark.parametrize(("before", "after"), [(12, 24), (200, 220), (2000, 2200)])
def test_more_products_keep_every_listing_and_add_only_new_ones(before: int, after: int) -> None:
    small = Catalog(CatalogConfig(products_per_class=before, **EXTRAS))
    grown = Catalog(CatalogConfig(products_per_class=after, **EXTRAS))
    for label in small.products:
        assert _listings(small, label) <= _listings(grown, label)
        assert len(_listings(grown, label) - _listings(small, label)) == after - before
        assert _organic(grown, label)[:before] == _organic(small, label)  # new products come after the old
    assert small.mislabelled() == [m for m in grown.mislabelled() if m in small.mislabelled()]


def test_the_extras_are_there_and_on_a_later_page_than_their_original() -> None:
    catalog = Catalog(CatalogConfig(products_per_class=200, **EXTRAS))
    for label, items in catalog.products.items():
        near = [p for p in items if p.variant]
        assert len(near) == 2 and len(catalog.mislabelled()) == 6
        for copy in near:
            original = next(p for p in items if p.seed == copy.seed and not p.variant)
            assert items.index(copy) - items.index(original) >= catalog.organic_per_page
        assert sum(1 for p in items if p.photo_label and p.photo_label != label) == 1 + 2  # cross-class + mislabelled


def test_a_different_seed_is_a_different_catalog() -> None:
    one, other = (Catalog(CatalogConfig(products_per_class=20, seed=s)) for s in (7, 8))
    assert _listings(one, "saree").isdisjoint(_listings(other, "saree"))
