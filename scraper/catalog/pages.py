"""The local catalog's inventory and its search pages, in Amazon's search-result markup.

Pure functions: which products exist, which appear on page N of a query, and the HTML for that page.
Markup follows amazon.in search results: ``div[data-component-type="s-search-result"][data-asin]``,
``img.s-image`` with ``src``/``srcset`` under ``/images/I/<id>._AC_UL320_.jpg``, titles in ``h2 span``,
a "Sponsored" label on ads, ``a.s-pagination-next`` (or a disabled ``span``) for paging, and a few widget
blocks with an empty ``data-asin``. Some products repeat on a later page, as on the real site.

Config keys: ``catalog.seed``, ``catalog.products_per_class``, ``catalog.results_per_page``,
``catalog.sponsored_per_page``, ``catalog.repeats_per_page``.
"""

from __future__ import annotations

import html
import math
import random
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import quote_plus

from configs.schema import CatalogConfig

LABELS = ("saree", "trousers", "jeans")
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
            for extra in extras:
                items.insert(rng.randint(len(items) // 2, len(items)), extra)  # on a later page than the original
        return out

    @cached_property
    def by_image_id(self) -> dict[str, Product]:
        """Every product by its image id."""
        return {p.image_id: p for items in self.products.values() for p in items}

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


PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
LAZY_SCRIPT = """<script>
function stjLazy(){document.querySelectorAll('img[data-src]').forEach(function(i){
 var r=i.getBoundingClientRect(); if(r.top<window.innerHeight+200){i.src=i.dataset.src;i.removeAttribute('data-src');}});}
window.addEventListener('scroll',stjLazy);window.addEventListener('load',stjLazy);
</script>"""


def _result_html(index: int, product: Product, sponsored: bool, image_base: str, lazy: bool = False) -> str:
    title = html.escape(product.title)
    thumb = image_base + image_path(product.image_id)
    srcset = ", ".join(
        f"{image_base}{image_path(product.image_id, m)} {d}"
        for m, d in (("_AC_UL320_", "1x"), ("_AC_UL480_FMwebp_QL65_", "1.5x"), ("_AC_UL640_FMwebp_QL65_", "2x"))
    )
    label = (
        '<div class="a-row a-spacing-micro"><span class="puis-label-popover-default">'
        '<span class="a-color-secondary">Sponsored</span></span></div>'
        if sponsored
        else ""
    )
    kind = "sp" if sponsored else "organic"
    if lazy:
        img = f'<img class="s-image" src="{PLACEHOLDER}" data-src="{thumb}" alt="{title}" data-image-index="{index}">'
    else:
        img = f'<img class="s-image" src="{thumb}" srcset="{srcset}" alt="{title}" data-image-index="{index}">'
    return f"""
<div data-asin="{product.asin}" data-index="{index}" data-uuid="{kind}-{index}" data-component-type="s-search-result"
     class="sg-col-4-of-24 s-result-item s-asin sg-col s-widget-spacing-small">
 <div class="s-card-container s-overflow-hidden aok-relative puis-include-content-margin">
  <span class="a-declarative"><a class="a-link-normal s-no-outline" href="/dp/{product.asin}">
   <div class="a-section aok-relative s-image-square-aspect">
    {img}
   </div></a></span>
  {label}
  <div data-cy="title-recipe"><a class="a-link-normal s-link-style a-text-normal" href="/dp/{product.asin}">
   <h2 aria-label="{title}" class="a-size-base-plus a-spacing-none a-color-base a-text-normal"><span>{title}</span></h2></a>
  </div>
  <span class="a-price"><span class="a-offscreen">&#8377;{product.price}</span></span>
 </div>
</div>"""


def render_search_page(catalog: Catalog, query: str, page: int, image_base: str = "", lazy: bool = False) -> str:
    """HTML for page ``page`` of the search for ``query``.

    Args:
        catalog: the inventory.
        query: the search keywords (``k`` parameter).
        page: 1-based page number.
        image_base: scheme and host prefixed to image URLs (Amazon serves them from another host).
        lazy: photos as a placeholder ``src`` plus ``data-src``, filled in by script on scroll.
    """
    label = label_for_query(query)
    rows = catalog.results(label, page) if label else []
    pages = catalog.page_count(label) if label else 1
    body = [
        '<div data-asin="" data-index="0" data-component-type="s-impression-logger" class="s-result-item">'
        "<span>RESULTS</span></div>"
    ]
    body += [_result_html(i + 1, p, sp, image_base, lazy) for i, (p, sp) in enumerate(rows)]
    body.append('<div data-asin="" class="s-result-item s-widget"><div class="a-section">Need help?</div></div>')
    if not rows:
        body.append(f'<div class="s-no-outline"><span>No results for {html.escape(query)}.</span></div>')
    q = quote_plus(query)
    if page < pages:
        nxt = (
            f'<a href="/s?k={q}&amp;page={page + 1}" aria-label="Go to next page, page {page + 1}" '
            'class="s-pagination-item s-pagination-next s-pagination-button s-pagination-separator">Next</a>'
        )
    else:
        nxt = (
            '<span class="s-pagination-item s-pagination-next s-pagination-disabled " aria-disabled="true">Next</span>'
        )
    return f"""<!doctype html>
<html lang="en-in"><head><meta charset="utf-8"><title>Amazon.in : {html.escape(query)}</title></head>
<body><div id="search"><div class="s-main-slot s-result-list s-search-results sg-row">
{"".join(body)}
</div>
<div role="navigation"><span class="s-pagination-strip">
<span class="s-pagination-item s-pagination-selected" aria-label="Current page, page {page}">{page}</span>
{nxt}</span></div></div>{LAZY_SCRIPT if lazy else ""}</body></html>"""


ROBOT_CHECK_HTML = """<!doctype html><html><head><title>Amazon.in</title></head><body>
<div class="a-container a-padding-double-large"><div class="a-box-inner">
<h4>Enter the characters you see below</h4>
<p class="a-last">Sorry, we just need to make sure you're not a robot. For best results, please make sure your
browser is accepting cookies.</p>
<form method="get" action="/errors/validateCaptcha" name="">
<input type="hidden" name="amzn" value="stj-local"><input type="hidden" name="amzn-r" value="/">
<img src="/captcha/Captcha_stj.jpg">
<input autocomplete="off" spellcheck="false" placeholder="Type characters" id="captchacharacters"
 name="field-keywords" type="text">
<button type="submit" class="a-button-text">Continue shopping</button>
</form></div></div></body></html>"""
