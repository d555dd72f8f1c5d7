"""Baselines stay linear in N: they fit on all training photos up to a cap, a stratified sample beyond it."""

from __future__ import annotations

import numpy as np

from training.fitting.baselines import FIT_CAPS, baseline_models, fit_rows, fitted_baselines


def test_fit_rows_are_every_row_up_to_the_cap_then_a_stratified_seeded_sample() -> None:
    labels = np.repeat([0, 1, 2], [600, 300, 100])
    assert np.array_equal(fit_rows(labels, seed=0, cap=1000), np.arange(1000))
    rows = fit_rows(labels, seed=0, cap=100)
    assert len(rows) == 100 and len(set(rows)) == 100 and list(rows) == sorted(rows)
    assert np.bincount(labels[rows]).tolist() == [60, 30, 10]  # the classes' shares kept
    assert np.array_equal(rows, fit_rows(labels, seed=0, cap=100))
    assert not np.array_equal(rows, fit_rows(labels, seed=1, cap=100))


def test_baselines_fitted_on_the_sample_still_learn(monkeypatch) -> None:
    import training.fitting.baselines as baselines

    monkeypatch.setattr(baselines, "FIT_CAPS", {"knn": 60, "decision_tree": 45})
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    features = rng.normal(size=(600, 8)) + 4 * np.eye(3, 8)[labels]
    for name, model in fitted_baselines((features, labels), seed=0).items():
        assert model.n_features_in_ == 8
        fitted = model[-1] if hasattr(model, "steps") else model
        fitted_on = fitted.n_samples_fit_ if name == "knn" else fitted.tree_.n_node_samples[0]
        assert fitted_on == baselines.FIT_CAPS[name]  # each model its own cap
        assert (model.predict(features) == labels).mean() > 0.9, name


def test_every_baseline_has_its_own_cap() -> None:
    assert FIT_CAPS.keys() == baseline_models(seed=0).keys()
