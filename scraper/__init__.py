"""The scrape stage as a plain library: parse search pages, fetch politely, verify photos, write the manifest.

Imports no Prefect; ``flows.scrape`` wraps :func:`scraper.scrape.scrape` as a task.
"""
