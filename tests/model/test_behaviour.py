"""Behaviour of a trained model (as Made-With-ML's behavioural tests): it works on photos it never saw
(minimum functionality), its answer survives what should not matter (invariance: mirroring, small changes of
light), it depends on the garment (direction: covering the garment moves it), and Grad-CAM looks at the
garment."""

from __future__ import annotations

import numpy as np
import pytest

from serving.explain import grad_cam

pytestmark = pytest.mark.slow  # ImageNet Lite0 at 224 px, trained once per session


def test_minimum_functionality_on_unseen_photos(trained) -> None:
    accuracy = (trained.predict(trained.pixels).argmax(1) == trained.labels).mean()
    assert accuracy >= 0.9, accuracy


def test_invariant_to_mirroring(trained) -> None:
    before = trained.predict(trained.pixels).argmax(1)
    after = trained.predict(trained.pixels[:, :, ::-1]).argmax(1)
    assert (before == after).mean() >= 0.9  # measured 0.95 (57 of 60)


def test_invariant_to_small_changes_of_light(trained) -> None:
    before = trained.predict(trained.pixels).argmax(1)
    for factor in (0.9, 1.1):
        after = trained.predict(np.clip(trained.pixels * factor, 0, 255)).argmax(1)
        assert (before == after).mean() >= 0.9, factor


def test_covering_the_garment_lowers_confidence_in_it(trained) -> None:
    """Direction: grey over the garment's box, and the true class's probability drops on most photos."""
    covered = trained.pixels.copy()
    for image, (left, top, right, bottom) in zip(covered, trained.garment_boxes(), strict=True):
        image[top:bottom, left:right] = 128.0
    rows = np.arange(len(trained.labels))
    before = trained.predict(trained.pixels)[rows, trained.labels]
    after = trained.predict(covered)[rows, trained.labels]
    assert (after < before).mean() >= 0.8


def test_grad_cam_looks_at_the_garment(trained) -> None:
    """On most photos the heatmap's mass inside the garment's box exceeds the box's share of the image."""
    hits = []
    for pixels, (left, top, right, bottom) in zip(trained.pixels, trained.garment_boxes(), strict=True):
        heat, _ = grad_cam(trained.classifier, pixels)
        share = (right - left) * (bottom - top) / heat.size
        inside = heat[top:bottom, left:right].sum() / max(heat.sum(), 1e-9)
        hits.append(inside > share)
    assert np.mean(hits) >= 0.75, np.mean(hits)
