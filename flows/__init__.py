"""Prefect glue: one flow per stage (scrape, prepare, train, publish) and the parent pipeline flow.

Each task wraps one call into a stage library; the CLI (``flows.cli``) is the entry point.
"""
