"""The local catalog's inventory: which products exist and which appear on page N of a query.

Pure and deterministic: everything derives from ``catalog.seed``. Some products repeat on a later page,
ads from other classes sit near the top, and optional extra listings re-use a photo (near-duplicates,
cross-class duplicates), as on the real site. The HTML for a page is ``catalog.markup``'s job.

Config keys: ``catalog.seed``, ``catalog.products_per_class``, ``catalog.results_per_page``,
``catalog.sponsored_per_page``, ``catalog.repeats_per_page``, ``catalog.near_duplicates_per_class``,
``catalog.cross_class_duplicates``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cached_property

from catalog.settings import DRAWN_CLASSES, CatalogConfig

LABELS = DRAWN_CLASSES
_QUERY_WORDS = {
    "saree": ("saree", "sari"),
    "trousers": ("trouser", "chino", "pant", "formal"),
    "jeans": ("jean", "denim"),
}
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TITLE_WORDS = {
    "saree": (
        ["Women's", "Banarasi", "Kanjivaram", "Chiffon", "Georgette", "Cotton", "Silk"],
        ["Saree with Blouse Piece", "Woven Saree", "Printed Saree", "Zari Border Saree"],
    ),
    "trousers": (
        ["Men's", "Slim Fit", "Regular Fit", "Formal", "Casual", "Stretch"],
        ["Chino Trousers", "Cotton Trousers", "Pleated Trousers", "Checked Trousers"],
    ),
    "jeans": (
        ["Men's", "Slim Fit", "Skinny", "Straight", "Relaxed", "Tapered"],
        ["Jeans", "Stretch Denim Jeans", "Mid-Rise Jeans", "Faded Jeans"],
    ),
}


@dataclass(frozen=True)
class Product:
    """One catalog listing."""

    asin: str
    image_id: str
    label: str
    title: str
    seed: int
    price: int
    photo_label: str = ""  # whose drawing the photo is; differs from ``label`` for a cross-class duplicate
    variant: int = 0  # >0: the same drawing, slightly altered (a near-duplicate photo)

    @property
    def drawing(self) -> tuple[str, int, int]:
        """(label, seed, variant) of the photo to draw."""
        return (self.photo_label or self.label, self.seed, self.variant)


def label_for_query(query: str) -> str | None:
    """The class whose products a search query returns, or ``None`` for an unknown query."""
    text = query.lower()
    for label, words in _QUERY_WORDS.items():
        if any(w in text for w in words):
            return label
    return None


@dataclass(frozen=True)
class Catalog:
    """The whole inventory, derived from the config's seed."""

    config: CatalogConfig

    @cached_property
    def products(self) -> dict[str, list[Product]]:
        """Products per label, in the order search returns them."""
        rng = random.Random(self.config.seed)
        out: dict[str, list[Product]] = {}

        def new(label: str, **photo: object) -> Product:
            adjectives, nouns = _TITLE_WORDS[label]
            return Product(
                asin="B0" + "".join(rng.choices(_ALNUM[:36].upper(), k=8)),
                image_id=str(rng.randint(41, 91)) + "".join(rng.choices(_ALNUM, k=9)),
                label=label,
                title=f"{rng.choice(adjectives)} {rng.choice(nouns)}",
                seed=int(photo.pop("seed", rng.getrandbits(31))),  # type: ignore[call-overload]
                price=rng.randint(299, 4999),
                **photo,  # type: ignore[arg-type]
            )

        for label in LABELS:
            out[label] = [new(label) for _ in range(self.config.products_per_class)]
        originals = {  # photos re-used by near-duplicates; cross-class copies use other photos
            label: rng.sample(out[label], min(self.config.near_duplicates_per_class, len(out[label])))
            for label in LABELS
        }
        reused = {p.seed for chosen in originals.values() for p in chosen}
        for label in LABELS:  # extra listings: altered copies of a photo, and photos of another class
            items = out[label]
            extras = [new(label, seed=o.seed, variant=k + 1) for k, o in enumerate(originals[label])]
            for _ in range(self.config.cross_class_duplicates):
                other = rng.choice([x for x in LABELS if x != label])
                source = rng.choice([p for p in out[other] if p.drawing[0] == other and p.seed not in reused])
                reused.add(source.seed)
                extras.append(new(label, seed=source.seed, photo_label=other))
            for _ in range(self.config.mislabelled_per_class):  # a photo of its own, drawn as another class
                extras.append(new(label, photo_label=rng.choice([x for x in LABELS if x != label])))
            for extra in extras:
                items.insert(rng.randint(len(items) // 2, len(items)), extra)  # on a later page than the original
        return out

    @cached_property
    def by_image_id(self) -> dict[str, Product]:
        """Every product by its image id."""
        return {p.image_id: p for items in self.products.values() for p in items}

    def mislabelled(self) -> list[dict[str, str]]:
        """Listings whose photo shows another class than the query they are listed under (the ground truth
        a label-issue finder is measured against; cross-class duplicates are not counted)."""
        originals = {(p.label, p.seed) for items in self.products.values() for p in items if not p.photo_label}
        return [
            {"asin": p.asin, "image_id": p.image_id, "listed_as": p.label, "drawn_as": p.photo_label}
            for items in self.products.values()
            for p in items
            if p.photo_label and p.photo_label != p.label and (p.photo_label, p.seed) not in originals
        ]

    @property
    def organic_per_page(self) -> int:
        """New (never shown before) organic results per page."""
        return max(1, self.config.results_per_page - self.config.sponsored_per_page - self.config.repeats_per_page)

    def page_count(self, label: str) -> int:
        """Number of result pages for a label's query."""
        return max(1, math.ceil(len(self.products[label]) / self.organic_per_page))

    def results(self, label: str, page: int) -> list[tuple[Product, bool]]:
        """The (product, sponsored) pairs on one page of a label's search, in display order."""
        items = self.products[label]
        n = self.organic_per_page
        organic = items[(page - 1) * n : page * n]
        if not organic:
            return []
        rng = random.Random(f"{self.config.seed}:{label}:{page}")
        shown_before = items[: (page - 1) * n]
        repeats = rng.sample(shown_before, min(self.config.repeats_per_page, len(shown_before)))
        others = [p for other in LABELS if other != label for p in self.products[other]]
        ads = rng.sample(others, min(self.config.sponsored_per_page, len(others)))
        rows = [(p, False) for p in organic + repeats]
        rng.shuffle(rows)
        for ad in ads:  # ads sit near the top, as on the real site
            rows.insert(rng.randint(0, min(3, len(rows))), (ad, True))
        return rows


def image_path(image_id: str, modifier: str | None = "_AC_UL320_") -> str:
    """Path of a product photo; ``modifier=None`` gives the full-size image."""
    return f"/images/I/{image_id}.{modifier}.jpg" if modifier else f"/images/I/{image_id}.jpg"
