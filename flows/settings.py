"""The ``stj`` command's config schema: the stages' sections plus the offline catalog's.

A config with a ``catalog:`` section (``configs/demo.yaml``) scrapes the local catalog, which the pipeline
starts when nothing answers at ``scrape.base_url``. The stages themselves take :class:`configs.Config` and
never see this section.

Config keys: ``catalog`` (see ``catalog.settings``) and every section of ``configs.schema``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import model_validator

from catalog.settings import DRAWN_CLASSES, CatalogConfig
from configs.loader import load_config
from configs.schema import Config


class RunConfig(Config):
    """A whole config file as ``stj`` reads it."""

    catalog: CatalogConfig | None = None

    @model_validator(mode="after")
    def _catalog_draws_the_classes(self) -> RunConfig:
        if self.catalog is not None:
            unknown = set(self.scrape.classes) - set(DRAWN_CLASSES)
            if unknown:
                raise ValueError(f"the local catalog only draws {', '.join(DRAWN_CLASSES)}; got {sorted(unknown)}")
        return self


def load_run_config(
    path: str | Path | None, overrides: Iterable[str] = (), environ: Mapping[str, str] | None = None
) -> RunConfig:
    """Read, override and validate a config file for the ``stj`` command (see :func:`configs.load_config`)."""
    return load_config(path, overrides, schema=RunConfig, environ=environ)
