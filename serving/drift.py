"""Drift checks: a window of live predictions against the champion's traffic baseline.

Evidently does not import beside STJ's pins (0.7.23 installs, then fails on pandas 3: ``infer_dtype_from_object``
is gone), so these are its default methods written with scipy, with its thresholds:

- **class mix** (the predicted class, categorical): chi-squared, drift when p < ``drift_p_value`` (0.05) while
  the baseline has at most 1 000 rows; above that, Jensen-Shannon distance >= ``drift_distance`` (0.1), empty
  shares read as 0.0001 as Evidently does. One change: the chi-squared test is of homogeneity (the baseline's
  counts and the window's as two samples), not Evidently's goodness of fit against the baseline's shares, which
  takes a baseline of ~100 test photos as exact and alarmed on 15 % of unshifted windows in a simulation.
- **confidence** (top-1 probability, numerical): two-sample Kolmogorov-Smirnov, p < 0.05; above 1 000 baseline
  rows the Wasserstein distance divided by the baseline's standard deviation >= 0.1.
- **"none of these" rate** (binary): Fisher's exact test, p < 0.05, one-sided (more flagged than the
  baseline); above 1 000 rows Jensen-Shannon distance >= 0.1. (Evidently's z-test for two proportions alarms
  too often on the few flagged photos of a ~100-photo baseline: 0 of 120 against 2 of 60 gives p = 0.02,
  Fisher's 0.11.)
- **embeddings** (pooled features, unit length): maximum mean discrepancy with a Gaussian kernel (scale: the
  median squared distance) and a permutation test, drift when p < 0.05 (Evidently's ``mmd`` method).

Each check alone raises a false alarm on 5 % of windows drawn from the baseline's own distribution (its p-value
threshold; by construction for the permutation test, approximately for the others); the verdict is drift when at
least ``drift_share`` (half) of the checks drift, Evidently's dataset-drift rule: about 1.4 % of such windows if
the checks were independent. Fixed seeds (``project.seed``): the same window always gets the same verdict.

Cost: O(rows) for the first three; the embedding check O((n + m)^2 x (features + permutations)) on at most
``monitor.max_rows`` rows a side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

SMALL_SAMPLE = 1000  # baseline rows up to which the p-value tests apply (Evidently's switch)
EMPTY_SHARE = 0.0001
PERMUTATIONS = 200


@dataclass(frozen=True)
class Check:
    """One drift check: what it measured, how, the figure, its threshold and whether it drifted; ``detail``
    holds what the report draws (shares, means)."""

    name: str
    method: str
    statistic: float
    threshold: float
    drifted: bool
    detail: dict

    def to_json(self) -> dict:
        """The check as plain JSON values."""
        return {**asdict(self), "statistic": round(float(self.statistic), 6), "drifted": bool(self.drifted)}


def _shares(counts: np.ndarray) -> np.ndarray:
    shares = counts / max(1, counts.sum())
    return np.where(shares == 0, EMPTY_SHARE, shares)


def class_mix(
    reference: np.ndarray, current: np.ndarray, class_names: list[str], p_value: float, distance: float
) -> Check:
    """Drift of the predicted classes' mix (indices into ``class_names``)."""
    bins = len(class_names)
    ref_counts = np.bincount(reference, minlength=bins).astype(float)
    cur_counts = np.bincount(current, minlength=bins).astype(float)
    ref, cur = _shares(ref_counts), _shares(cur_counts)
    detail = {
        "baseline": dict(zip(class_names, np.round(ref_counts / max(1, ref_counts.sum()), 4).tolist(), strict=True)),
        "window": dict(zip(class_names, np.round(cur_counts / max(1, cur_counts.sum()), 4).tolist(), strict=True)),
    }
    if len(reference) <= SMALL_SAMPLE:
        seen = (ref_counts + cur_counts) > 0
        table = np.stack([ref_counts[seen], cur_counts[seen]])
        p = float(stats.chi2_contingency(table, correction=False).pvalue) if seen.sum() > 1 else 1.0
        return Check("class mix", "chi-squared p-value", p, p_value, p < p_value, detail)
    js = float(jensenshannon(ref, cur))
    return Check("class mix", "Jensen-Shannon distance", js, distance, js >= distance, detail)


def confidence(reference: np.ndarray, current: np.ndarray, p_value: float, distance: float) -> Check:
    """Drift of the top-1 confidences."""
    detail = {
        "baseline_mean": round(float(np.mean(reference)), 4),
        "window_mean": round(float(np.mean(current)), 4),
        "baseline_histogram": np.histogram(reference, bins=10, range=(0, 1))[0].tolist(),
        "window_histogram": np.histogram(current, bins=10, range=(0, 1))[0].tolist(),
    }
    if len(reference) <= SMALL_SAMPLE:
        p = float(stats.ks_2samp(reference, current).pvalue)
        return Check("confidence", "Kolmogorov-Smirnov p-value", p, p_value, p < p_value, detail)
    spread = max(float(np.std(reference)), 1e-3)
    wd = float(stats.wasserstein_distance(reference, current)) / spread
    return Check("confidence", "Wasserstein distance (normed)", wd, distance, wd >= distance, detail)


def ood_rate(reference: np.ndarray, current: np.ndarray, p_value: float, distance: float) -> Check:
    """Drift of the share of photos flagged "none of these" (``True`` = flagged)."""
    ref_rate, cur_rate = float(np.mean(reference)), float(np.mean(current))
    detail = {"baseline_rate": round(ref_rate, 4), "window_rate": round(cur_rate, 4)}
    if len(reference) <= SMALL_SAMPLE:
        cur_flagged, ref_flagged = int(np.sum(current)), int(np.sum(reference))
        table = [[cur_flagged, len(current) - cur_flagged], [ref_flagged, len(reference) - ref_flagged]]
        p = float(stats.fisher_exact(table, alternative="greater").pvalue)
        return Check("none-of-these rate", "Fisher's exact p-value (more flagged)", p, p_value, p < p_value, detail)
    ref, cur = _shares(np.array([1 - ref_rate, ref_rate])), _shares(np.array([1 - cur_rate, cur_rate]))
    js = float(jensenshannon(ref, cur))
    return Check("none-of-these rate", "Jensen-Shannon distance", js, distance, js >= distance, detail)


def embeddings(reference: np.ndarray, current: np.ndarray, p_value: float, seed: int) -> Check:
    """Drift of the pooled features (unit rows): MMD with a permutation test."""
    pooled = np.concatenate([reference, current]).astype(np.float32)
    squared = np.maximum(
        np.sum(pooled**2, axis=1)[:, None] + np.sum(pooled**2, axis=1)[None, :] - 2 * pooled @ pooled.T, 0
    )
    bandwidth = float(np.median(squared[np.triu_indices(len(pooled), 1)])) or 1.0
    kernel = np.exp(-squared / bandwidth)
    n = len(reference)
    # MMD^2 (biased) = w' K w with w = 1/n on the baseline's rows, -1/m on the window's: a permutation only
    # reorders w, so each costs one matrix-vector product
    weights = np.where(np.arange(len(pooled)) < n, 1.0 / n, -1.0 / max(1, len(current))).astype(np.float32)
    observed = float(weights @ kernel @ weights)
    rng = np.random.default_rng(seed)
    exceeded = 0
    for _ in range(PERMUTATIONS):
        shuffled = weights[rng.permutation(len(pooled))]
        exceeded += float(shuffled @ kernel @ shuffled) >= observed
    p = (exceeded + 1) / (PERMUTATIONS + 1)
    detail = {"mmd": round(observed, 6), "baseline_rows": n, "window_rows": len(current)}
    return Check("embeddings", "MMD permutation p-value", p, p_value, p < p_value, detail)
