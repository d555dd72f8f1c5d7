"""Team services on one machine (PostgreSQL, Prefect and MLflow servers, Dask): ``make team-up``."""
