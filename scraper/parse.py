"""Parse Amazon search-result pages (live or the local catalog: same markup, same parser).

Pure functions only. A result is ``div[data-component-type="s-search-result"]`` with a non-empty
``data-asin``; its photo is ``img.s-image`` (``src``, ``srcset`` or a lazy ``data-src``), its title is in
``h2 … span``; ads carry a "Sponsored" label. The next page is ``a.s-pagination-next``.

Config keys: ``scrape.skip_sponsored``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag

_SIZE_MODIFIER = re.compile(r"\._[^/]*?_\.(jpe?g|png|webp|gif)$", re.IGNORECASE)
_SPONSORED = re.compile(r"^\s*Sponsored\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SearchResult:
    """One organic (or sponsored) product on a search page."""

    asin: str
    title: str
    image_url: str
    sponsored: bool
    position: int


@dataclass(frozen=True)
class SearchPage:
    """What one search page holds: its results, the next page's URL, and what was skipped and why."""

    results: list[SearchResult]
    next_url: str | None
    skipped: Counter[str] = field(default_factory=Counter)


def full_size_url(url: str) -> str:
    """Drop Amazon's ``._AC_UL320_`` style size modifier to get the full-resolution image URL."""
    return _SIZE_MODIFIER.sub(lambda m: "." + m.group(1), url)


def _srcset_best(srcset: str) -> str | None:
    best, best_scale = None, -1.0
    for part in srcset.split(","):
        bits = part.strip().split()
        if not bits:
            continue
        scale = 1.0
        if len(bits) > 1:
            try:
                scale = float(bits[1].rstrip("xw"))
            except ValueError:
                scale = 1.0
        if scale > best_scale:
            best, best_scale = bits[0], scale
    return best


def best_image_url(img: Tag, page_url: str) -> str | None:
    """The largest real photo URL among ``srcset``, ``data-src`` and ``src`` (placeholders ignored), full size."""
    candidates = [
        _srcset_best(str(img.get("srcset") or "")),
        str(img.get("data-src") or "") or None,
        str(img.get("src") or "") or None,
    ]
    for url in candidates:
        if url and not url.startswith("data:") and "grey-pixel" not in url:
            return full_size_url(urljoin(page_url, url))
    return None


def _is_sponsored(node: Tag) -> bool:
    classes = " ".join(node.get("class") or [])
    return "AdHolder" in classes or node.find(string=_SPONSORED) is not None


def parse_search_page(html: str, page_url: str, skip_sponsored: bool = True) -> SearchPage:
    """Extract products and the next-page link from a search page.

    Args:
        html: the page's HTML.
        page_url: the page's URL, to resolve relative links.
        skip_sponsored: leave out results labelled "Sponsored".

    Returns:
        The page's results in display order, the absolute next-page URL (``None`` on the last page), and
        counts of skipped blocks by reason (``no_asin``, ``sponsored``, ``no_image``).
    """
    soup = BeautifulSoup(html, "lxml")
    results: list[SearchResult] = []
    skipped: Counter[str] = Counter()
    for node in soup.select('div[data-component-type="s-search-result"]'):
        asin = str(node.get("data-asin") or "").strip()
        if not asin:
            skipped["no_asin"] += 1
            continue
        sponsored = _is_sponsored(node)
        if sponsored and skip_sponsored:
            skipped["sponsored"] += 1
            continue
        img = node.select_one("img.s-image")
        image_url = best_image_url(img, page_url) if img else None
        if not image_url:
            skipped["no_image"] += 1
            continue
        title_node = node.select_one("h2 span") or node.select_one("h2")
        title = " ".join(title_node.get_text(" ").split()) if title_node else ""
        results.append(
            SearchResult(asin=asin, title=title, image_url=image_url, sponsored=sponsored, position=len(results) + 1)
        )
    nxt = soup.select_one("a.s-pagination-next[href]")
    next_url = urljoin(page_url, str(nxt["href"])) if nxt else None
    return SearchPage(results, next_url, skipped)


def image_id_from_url(url: str) -> str:
    """Amazon's image id: the file name of the full-size URL without its extension."""
    name = full_size_url(url).rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0]
