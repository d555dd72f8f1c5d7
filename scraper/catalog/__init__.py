"""The local Amazon-like catalog: drawn product photos served as search pages on 127.0.0.1.

It is the offline stand-in for amazon.in, used by the demo, the tests and the benchmarks.
"""

from scraper.catalog.pages import Catalog, label_for_query, render_search_page
from scraper.catalog.server import CatalogServer, running_catalog

__all__ = ["Catalog", "CatalogServer", "label_for_query", "render_search_page", "running_catalog"]
