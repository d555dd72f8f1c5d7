"""The local Amazon-like catalog: drawn product photos served as search pages on 127.0.0.1.

The offline stand-in for amazon.in, used by the demo, the tests and the benchmarks. A room of its own:
the scraper knows only a base URL, and the catalog's switches (``catalog.*``) live in its own schema
(``catalog.settings``), not in the stages'.
"""

from catalog.inventory import Catalog, label_for_query
from catalog.markup import render_search_page
from catalog.server import CatalogServer, catalog_for, running_catalog
from catalog.settings import CatalogConfig, FaultConfig

__all__ = [
    "Catalog",
    "CatalogConfig",
    "CatalogServer",
    "FaultConfig",
    "catalog_for",
    "label_for_query",
    "render_search_page",
    "running_catalog",
]
