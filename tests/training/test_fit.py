"""Head training: early stopping restores the best epoch, runs are reproducible, a killed run resumes exactly."""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import pytest

from configs.schema import TrainConfig
from core.runtime import TensorFlowRuntime
from training.fitting.fit import STATE_FILE, EpochProgress, fit_head


def _features(seed: int = 0, n: int = 90):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 2048)).astype(np.float32) + y[:, None] * 0.05  # weakly separable: overfits soon
    return x[: n * 2 // 3], y[: n * 2 // 3], x[n * 2 // 3 :], y[n * 2 // 3 :]


def _config(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 12, "patience": 3, "batch_size": 16, "learning_rate": 3e-3, **kw})


def test_early_stopping_restores_best_epoch(tmp_path: Path) -> None:
    xt, yt, xv, yv = _features()
    head, history, best = fit_head((xt, yt), (xv, yv), 3, _config(), tmp_path, seed=1)
    assert len(history["val_loss"]) < 12, "should stop early on this data"
    assert best == int(np.argmin(history["val_loss"])) + 1
    loss = keras.losses.SparseCategoricalCrossentropy()(yv, head.predict(xv, verbose=0))
    assert float(loss) == pytest.approx(min(history["val_loss"]), rel=1e-4)
    checkpoint = keras.models.clone_model(head)
    checkpoint.load_weights(tmp_path / "best.weights.h5")  # best-only checkpoint holds the same epoch
    np.testing.assert_allclose(checkpoint.predict(xv, verbose=0), head.predict(xv, verbose=0), atol=1e-6)


def test_two_runs_give_identical_weights(tmp_path: Path) -> None:
    xt, yt, xv, yv = _features()
    a, ha, _ = fit_head((xt, yt), (xv, yv), 3, _config(), tmp_path / "a", seed=5)
    b, hb, _ = fit_head((xt, yt), (xv, yv), 3, _config(), tmp_path / "b", seed=5)
    assert ha == hb
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


class _Crash(keras.callbacks.Callback):
    def __init__(self, at_epoch: int) -> None:
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt("simulated kill")


def test_resume_after_kill_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    xt, yt, xv, yv = _features(seed=3)
    config = _config(patience=20, epochs=8)
    full, full_history, _ = fit_head((xt, yt), (xv, yv), 3, config, tmp_path / "full", seed=2)
    with pytest.raises(KeyboardInterrupt):
        fit_head((xt, yt), (xv, yv), 3, config, tmp_path / "resumed", seed=2, callbacks=[_Crash(at_epoch=3)])
    resumed, resumed_history, _ = fit_head((xt, yt), (xv, yv), 3, config, tmp_path / "resumed", seed=2)
    assert len(resumed_history["loss"]) == 8
    np.testing.assert_allclose(resumed_history["val_loss"], full_history["val_loss"], rtol=1e-6)
    for wa, wb in zip(full.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, atol=1e-6)


def test_the_epoch_line_reports_the_epochs_run_and_the_best_validation_loss(tmp_path: Path, caplog) -> None:
    xt, yt, xv, yv = _features()
    caplog.set_level(logging.INFO, logger="core.progress")
    _, history, best = fit_head(
        (xt, yt), (xv, yv), 3, _config(), tmp_path, seed=1, callbacks=[EpochProgress(12, "head epochs")]
    )
    [line] = [r.getMessage() for r in caplog.records if r.name == "core.progress"]
    ran = len(history["val_loss"])
    assert line.startswith(f"head epochs: {ran}/12 epoch (")
    assert line.endswith(f"best val_loss {min(history['val_loss']):.4f} at epoch {best}")


def test_head_scoring_without_predict_matches_keras_predict_in_any_batch_size(tmp_path: Path) -> None:
    xt, yt, xv, yv = _features()
    head, _, _ = fit_head((xt, yt), (xv, yv), 3, _config(), None, seed=1)
    expected = head.predict(xv, verbose=0)
    score = TensorFlowRuntime(head)  # what precision choice and the label-issue folds score the head with
    np.testing.assert_allclose(score(xv), expected, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([score(xv[:7]), score(xv[7:])]), expected, atol=1e-6)
    assert score(xv[:0]).shape == (0, 3)


def test_streamed_batches_give_the_weights_of_the_materialised_epochs(tmp_path: Path) -> None:
    """The head reads each batch when it is needed; its weights are bit-equal to fitting on every epoch's rows
    gathered up front (how fit_head trained before, whose memory grew with epochs × rows)."""
    from benchmarks.head_memory import fit_materialised

    xt, yt, xv, yv = _features(seed=4, n=100)  # 66 rows, batches of 16: each epoch ends on a wrapped batch
    config = _config(patience=50, epochs=6)
    streamed, history, _ = fit_head((xt, yt), (xv, yv), 3, config, None, seed=9)
    head = fit_materialised((xt, yt), (xv, yv), 3, config, seed=9)
    for ours, materialised in zip(streamed.get_weights(), head.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, materialised)


def test_an_interrupt_recorded_during_the_fit_is_raised_at_its_next_safe_point_and_the_fit_resumes(
    tmp_path: Path,
) -> None:
    """A signal deferred while TensorFlow runs (core.safe_points) stops the fit at its next safe point, in
    Keras' Python loop; the epochs finished before it are saved, and a resumed run goes on from them."""
    import signal

    from core import safe_points

    class InterruptInEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if epoch == 2:
                assert safe_points.defer(signal.SIGINT)  # what the command's handler does with the signal

    xt, yt, xv, yv = _features()
    with pytest.raises(KeyboardInterrupt), safe_points.deferring():
        fit_head((xt, yt), (xv, yv), 3, _config(patience=50), tmp_path, seed=1, callbacks=[InterruptInEpoch()])
    safe_points.checkpoint()  # nothing left pending
    assert (tmp_path / STATE_FILE).exists()
    head, history, _ = fit_head((xt, yt), (xv, yv), 3, _config(epochs=4, patience=50), tmp_path, seed=1)
    assert len(history["val_loss"]) == 4  # epochs 1-3 came from the interrupted fit's saved state
