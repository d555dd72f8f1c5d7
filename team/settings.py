"""Where the team services live and listen (``Team``), and the one error ``team`` reports (``TeamError``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
POOL = "stj"


@dataclass(frozen=True)
class Team:
    """Where the services live and listen (ports from ``STJ_TEAM_*_PORT`` when set)."""

    root: Path
    pg_port: int
    prefect_port: int
    mlflow_port: int
    dask_port: int

    @classmethod
    def from_env(cls) -> Team:
        """The folder (``STJ_TEAM_DIR``, default ``.team``) and ports (``STJ_TEAM_<NAME>_PORT``) from the
        environment, defaults otherwise."""

        def port(name: str, default: int) -> int:
            value = os.environ.get(f"STJ_TEAM_{name}_PORT", str(default))
            if not value.isdigit():
                raise TeamError(f"STJ_TEAM_{name}_PORT={value!r}: not a port number")
            return int(value)

        root = Path(os.environ.get("STJ_TEAM_DIR", ".team")).resolve()
        return cls(root, port("PG", 55432), port("PREFECT", 4200), port("MLFLOW", 5050), port("DASK", 8786))

    @property
    def prefect_api(self) -> str:
        """The Prefect server's API URL."""
        return f"http://{HOST}:{self.prefect_port}/api"

    @property
    def mlflow_uri(self) -> str:
        """The MLflow tracking server's URL."""
        return f"http://{HOST}:{self.mlflow_port}"

    @property
    def dask_address(self) -> str:
        """The Dask scheduler's address."""
        return f"tcp://{HOST}:{self.dask_port}"

    def database(self, name: str, driver: str = "") -> str:
        """A SQLAlchemy URL of one of the cluster's databases (the password comes from ``PGPASSWORD``)."""
        return f"postgresql{driver}://postgres@{HOST}:{self.pg_port}/{name}"

    @property
    def ports(self) -> dict[str, int]:
        """Each service's port."""
        return {
            "PostgreSQL": self.pg_port,
            "Prefect": self.prefect_port,
            "MLflow": self.mlflow_port,
            "Dask": self.dask_port,
        }

    def settings(self) -> dict[str, str]:
        """The environment that points ``stj`` (config overrides) and ``prefect`` at the services."""
        return {
            "PREFECT_API_URL": self.prefect_api,
            "STJ_TRACKING__URI": self.mlflow_uri,
            "STJ_TRACKING__UI_URL": self.mlflow_uri,
            "STJ_ORCHESTRATION__TASK_RUNNER": "dask",
            "STJ_ORCHESTRATION__DASK_ADDRESS": self.dask_address,
            "STJ_SERVE__DATABASE_URL": self.database("stj"),
            "PGPASSFILE": str(self.root / "pgpass"),  # libpq reads the password there: none in the env file
        }


class TeamError(Exception):
    """A service did not start; the message says which and where its log is."""
