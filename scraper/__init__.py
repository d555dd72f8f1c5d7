"""The scrape stage as a plain library: fetch search pages politely, parse them, verify and keep photos.

Modules: ``fetch`` (requests with politeness), ``robot_check``, ``browser`` (headless Chromium), ``pages``
(which of the two fetches a page), ``parse`` (search-result markup), ``photos`` (download, verify, save),
``dedup`` and ``collection`` (what is new, a duplicate or a conflict), ``report``, ``scrape`` (the stage).
Imports no Prefect; ``flows.pipeline`` wraps :func:`scraper.scrape.scrape` as a task. It writes the
manifest defined in ``core.manifest``.
"""
