"""Sweeps: one candidate per grid point over the one embedding cache, as child runs of a sweep run.

The candidate with the lowest validation loss (never the test split) is completed in the parent run and
handed to the quality gate.

Config keys: those the grid names (see ``configs.sweep``), plus everything ``training.runs.train`` reads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import numpy as np

from configs.schema import Config
from configs.sweep import override_config
from core.progress import Progress
from training.embedding.features import load_features
from training.fitting.candidate import train_candidate
from training.runs.track import configure_tracking, log_candidate, tracked_run
from training.runs.train import TrainResult, record_run


def sweep(
    config: Config,
    grid_points: list[list[str]],
    split_file: Path,
    config_source: str = "",
    report_file: Path | None = None,
) -> TrainResult:
    """Train one candidate per grid point; the best by validation loss becomes the run's model.

    Args:
        config: the base config.
        grid_points: ``section.key=value`` overrides, one list per point.
        split_file: the split file.
        config_source: recorded as a tag.
        report_file: the scrape report to attach.
    """
    started = time.monotonic()
    points = [override_config(config, overrides) for overrides in grid_points]
    features = load_features(config, split_file)
    configure_tracking(config.tracking)
    with tracked_run(run_name=f"sweep of {len(grid_points)} (training)") as parent:
        mlflow.set_tag("sweep.points", json.dumps(grid_points))
        candidates = []
        with Progress(len(points), "sweep points", "point", summary=True) as progress:
            for index, (point, overrides) in enumerate(zip(points, grid_points, strict=True)):
                with tracked_run(run_name=f"point {index + 1}: {' '.join(overrides)}", nested=True):
                    mlflow.set_tag("sweep.overrides", " ".join(overrides))
                    candidate = train_candidate(point, features)
                    log_candidate(point, candidate)
                candidates.append(candidate)
                best = int(np.argmin([c.val_loss for c in candidates]))
                progress.note(f"best val_loss {candidates[best].val_loss:.4f} ({' '.join(grid_points[best])})")
                progress.update(1)
        mlflow.set_tag("sweep.best", " ".join(grid_points[best]))
        return record_run(
            points[best],
            features,
            candidates[best],
            run_id=parent.info.run_id,
            config_source=config_source,
            report_file=report_file,
            started=started,
            kind=f"sweep of {len(grid_points)}, best {' '.join(grid_points[best])} · ",
        )
