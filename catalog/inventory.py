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
_EXTRA_RATE = 0.25  # the share of products a coin marks as a candidate to have its photo re-used
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

    def _rng(self, *key: object) -> random.Random:
        return random.Random(":".join(map(str, (self.config.seed, *key))))

    def _product(self, label: str, key: tuple, **photo: object) -> Product:
        """A listing whose every field derives from ``key`` (the listing's place in the inventory, never its
        count), so that it is the same whatever ``products_per_class`` is."""
        rng = self._rng(label, *key)
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

    def _flagged(self, label: str, products: list[Product], kind: str, count: int, skip: set[int]) -> list[Product]:
        """The first ``count`` products (in listing order) that a coin of their own marks for ``kind``: the
        same ones whenever the list only grows (O(N))."""
        chosen = []
        for index, product in enumerate(products):
            if len(chosen) == count:
                break
            if product.seed not in skip and self._rng(label, index, kind).random() < _EXTRA_RATE:
                chosen.append(product)
        return chosen

    @cached_property
    def products(self) -> dict[str, list[Product]]:
        """Products per label, in the order search returns them.

        Grows by appending: raising ``products_per_class`` keeps every listing (organic and extra) of the
        smaller catalog and adds new ones, so a re-scrape finds exactly the new listings. An extra listing
        re-uses the photo of one of the first products a coin of their own marks, and sits a page or more
        after it (at the end while the catalog is too short for that)."""
        organic = {
            label: [self._product(label, (index,)) for index in range(self.config.products_per_class)]
            for label in LABELS
        }
        reused: set[int] = set()
        extras: dict[str, list[tuple[Product, Product | None]]] = {}  # label: (extra, the listing it follows)
        for label in LABELS:  # altered copies of a photo (near-duplicates)
            originals = self._flagged(label, organic[label], "near", self.config.near_duplicates_per_class, reused)
            reused |= {o.seed for o in originals}
            extras[label] = [
                (self._product(label, ("near", k), seed=o.seed, variant=k + 1), o) for k, o in enumerate(originals)
            ]
        for label in LABELS:  # photos of another class's product, listed under this one
            for k in range(self.config.cross_class_duplicates):
                other = self._rng(label, "cross", k).choice([x for x in LABELS if x != label])
                found = self._flagged(other, organic[other], f"cross-{label}-{k}", 1, reused)
                if found:
                    reused.add(found[0].seed)
                    extras[label].append(
                        (self._product(label, ("cross", k), seed=found[0].seed, photo_label=other), None)
                    )
        for label in LABELS:  # a photo of its own, drawn as another class
            for k in range(self.config.mislabelled_per_class):
                drawn_as = self._rng(label, "mislabelled", k).choice([x for x in LABELS if x != label])
                extras[label].append((self._product(label, ("mislabelled", k), photo_label=drawn_as), None))
        return {label: self._placed(label, organic[label], extras[label]) for label in LABELS}

    def _placed(self, label: str, items: list[Product], extras: list[tuple[Product, Product | None]]) -> list[Product]:
        """``items`` with each extra inserted one to three pages after the listing it follows (or after a
        place of its own), in a spot that does not depend on how many products there are."""
        page = self.organic_per_page
        wanted = []
        for k, (extra, follows) in enumerate(extras):
            rng = self._rng(label, "place", k)
            after = items.index(follows) if follows is not None else rng.randrange(4 * page)
            wanted.append((after + rng.randint(page, 3 * page), k, extra))
        out = list(items)
        for position, _, extra in sorted(wanted, key=lambda w: (w[0], w[1]), reverse=True):
            out.insert(min(position, len(items)), extra)
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
        # ads come from the other classes' listings up to this page: the same ones whatever their count
        others = [p for other in LABELS if other != label for p in self.products[other][: page * n]]
        ads = rng.sample(others, min(self.config.sponsored_per_page, len(others)))
        rows = [(p, False) for p in organic + repeats]
        rng.shuffle(rows)
        for ad in ads:  # ads sit near the top, as on the real site
            rows.insert(rng.randint(0, min(3, len(rows))), (ad, True))
        return rows


def image_path(image_id: str, modifier: str | None = "_AC_UL320_") -> str:
    """Path of a product photo; ``modifier=None`` gives the full-size image."""
    return f"/images/I/{image_id}.{modifier}.jpg" if modifier else f"/images/I/{image_id}.jpg"
