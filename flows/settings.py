"""The ``stj`` command's config schema: the stages' sections plus the offline catalog's.

A config with a ``catalog:`` section (``configs/demo.yaml``) scrapes the local catalog, which the pipeline
starts when nothing answers at ``scrape.base_url``. The stages themselves take :class:`configs.Config` and
never see this section.

Config keys: ``catalog`` (see ``catalog.settings``), ``orchestration`` (below) and every section of
``configs.schema``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from catalog.settings import DRAWN_CLASSES, CatalogConfig
from configs.loader import load_config
from configs.schema import Config


class OrchestrationConfig(BaseModel):
    """Where the pipeline's tasks run: in the flow's process (``local``), or fanned out on a Dask cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_runner: Literal["local", "dask"] = Field(
        default="local",
        description="dask: query scrapes, embedding shards and k-fold folds run as Prefect tasks on Dask",
    )
    dask_address: str | None = Field(
        default=None, description="scheduler of a running cluster (tcp://host:8786); none: a local cluster per run"
    )
    dask_workers: int = Field(default=2, ge=1, description="processes of the local cluster (no dask_address)")
    embed_shard_size: int = Field(default=256, ge=1, description="photos per embedding task (whole batches)")

    @model_validator(mode="after")
    def _address_is_a_scheduler(self) -> OrchestrationConfig:
        if self.dask_address is not None and "://" not in self.dask_address:
            raise ValueError(f"dask_address {self.dask_address!r}: a scheduler address such as tcp://host:8786")
        return self


class RunConfig(Config):
    """A whole config file as ``stj`` reads it."""

    catalog: CatalogConfig | None = None
    orchestration: OrchestrationConfig = OrchestrationConfig()

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
