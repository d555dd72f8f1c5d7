"""The search-page parser on Amazon's recorded structure and on the local catalog's pages."""

from __future__ import annotations

from pathlib import Path

from catalog import Catalog, render_search_page
from catalog.settings import CatalogConfig
from scraper.parse import full_size_url, image_id_from_url, parse_search_page

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "amazon_search_last_page.html"
PAGE_URL = "https://www.amazon.in/s?k=men+jeans&page=7"


def test_amazon_page_results_skips_and_last_page() -> None:
    page = parse_search_page(FIXTURE.read_text(), PAGE_URL)
    assert [r.asin for r in page.results] == ["B0ORGANIC1", "B0LAZY0001"]
    first, lazy = page.results
    assert first.title == "Men's Slim Fit Jeans"
    assert first.image_url == "https://m.media-amazon.com/images/I/71abcDEF12L.jpg"  # largest srcset, full size
    assert lazy.image_url == "https://www.amazon.in/images/I/81lazyPhoto.jpg"  # data-src, resolved, full size
    assert lazy.title == "Relaxed Fit Jeans"
    assert dict(page.skipped) == {"sponsored": 2, "no_asin": 1, "no_image": 1}
    assert page.next_url is None


def test_sponsored_kept_when_asked() -> None:
    page = parse_search_page(FIXTURE.read_text(), PAGE_URL, skip_sponsored=False)
    sponsored = [r.asin for r in page.results if r.sponsored]
    assert sponsored == ["B0SPONSOR1", "B0SPONSOR2"]


def test_full_size_url_and_image_id() -> None:
    assert full_size_url("https://x/images/I/71a._AC_SX679_QL70_ML2_.jpg") == "https://x/images/I/71a.jpg"
    assert full_size_url("https://x/images/I/71a.jpg") == "https://x/images/I/71a.jpg"
    assert image_id_from_url("https://x/images/I/71a._AC_UL320_.jpg") == "71a"


def test_catalog_pages_parse_with_next_link_and_ads() -> None:
    catalog = Catalog(
        CatalogConfig(products_per_class=30, results_per_page=10, sponsored_per_page=2, repeats_per_page=1)
    )
    base = "http://127.0.0.1:9"
    html = render_search_page(catalog, "men jeans", 1, image_base=base)
    page = parse_search_page(html, f"{base}/s?k=men+jeans")
    assert page.skipped["sponsored"] == 2
    assert len(page.results) == catalog.organic_per_page  # page 1 has no repeats yet
    expected = {p.asin for p in catalog.products["jeans"][: catalog.organic_per_page]}
    assert {r.asin for r in page.results} == expected
    assert page.next_url == f"{base}/s?k=men+jeans&page=2"
    assert all(r.image_url.startswith(f"{base}/images/I/") and "._AC_" not in r.image_url for r in page.results)


def test_catalog_last_page_and_repeats() -> None:
    catalog = Catalog(
        CatalogConfig(products_per_class=30, results_per_page=10, sponsored_per_page=2, repeats_per_page=1)
    )
    last = catalog.page_count("saree")
    html = render_search_page(catalog, "saree", last, image_base="http://h")
    page = parse_search_page(html, "http://h/s?k=saree")
    assert page.next_url is None
    earlier = {p.asin for p in catalog.products["saree"][: (last - 1) * catalog.organic_per_page]}
    assert any(r.asin in earlier for r in page.results), "later pages repeat an earlier product"


def test_unknown_query_has_no_results() -> None:
    catalog = Catalog(CatalogConfig(products_per_class=5))
    page = parse_search_page(render_search_page(catalog, "laptop", 1), "http://h/s?k=laptop")
    assert page.results == [] and page.next_url is None
