""" "None of these": the index's score, its calibration and sampling, its file, and the probe photos it is
judged on (no TensorFlow: features are drawn here)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from core.ood import OodIndex, index_from, reference_rows
from training.evaluation.ood_probe import DRAWINGS, probe_photos, shipped_photos


def _clusters(n: int, seed: int, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` features around each centre (tight clusters), and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centres)), n)
    return centres[labels] + 0.05 * rng.normal(size=(len(labels), centres.shape[1])), labels


def test_photos_like_the_training_ones_are_kept_and_unlike_ones_flagged() -> None:
    centres = np.random.default_rng(0).normal(size=(3, 64))
    train, labels = _clusters(200, 1, centres)
    val, _ = _clusters(100, 2, centres)
    test, _ = _clusters(100, 3, centres)
    index = index_from(train[reference_rows(labels, 50, seed=0)], k=5).calibrated(val, 99.0)
    kept = index.in_distribution(index.scores(test)).mean()
    assert kept >= 0.95  # same distribution as the calibration photos: ~99 % by construction
    elsewhere = np.random.default_rng(4).normal(size=(50, 64))  # other directions altogether
    assert not index.in_distribution(index.scores(elsewhere)).any()
    between = (centres[0] + centres[1]) / 2  # between two classes: far from both clusters' members
    assert index.scores(between[None])[0] > index.threshold


def test_the_score_is_the_cosine_distance_to_the_kth_nearest_reference() -> None:
    reference = np.eye(4)
    index = index_from(reference, k=2)
    scores = index.scores(np.array([[1.0, 0, 0, 0], [3.0, 3.0, 0, 0]]))
    # the first: nearest is itself (1.0), second nearest orthogonal (0.0); the second: two at cos 0.707
    np.testing.assert_allclose(scores, [1.0, 1 - np.sqrt(0.5)], atol=1e-3)
    assert index_from(reference, k=1).scores(np.array([[2.0, 0, 0, 0]]))[0] < 1e-3  # length does not matter


def test_each_class_keeps_its_share_of_the_reference_drawn_by_the_seed() -> None:
    labels = np.array([0] * 500 + [1] * 20 + [2] * 80)
    rows = reference_rows(labels, 50, seed=3)
    assert np.bincount(labels[rows]).tolist() == [50, 20, 50]
    assert (np.diff(rows) > 0).all() and np.array_equal(rows, reference_rows(labels, 50, seed=3))
    assert not np.array_equal(rows, reference_rows(labels, 50, seed=4))


def test_the_index_file_reads_back_the_same() -> None:
    index = index_from(np.random.default_rng(0).normal(size=(30, 16)), k=3)
    index = index.calibrated(np.random.default_rng(1).normal(size=(40, 16)), 95.0)
    back = OodIndex.from_bytes(index.to_bytes())
    assert back.reference.dtype == np.float16 and np.array_equal(back.reference, index.reference)
    assert (back.k, back.threshold, back.percentile) == (index.k, index.threshold, 95.0)
    probe = np.random.default_rng(2).normal(size=(5, 16))
    np.testing.assert_array_equal(back.scores(probe), index.scores(probe))


def test_the_probe_set_is_drawn_the_same_every_time_and_ships_no_scikit_image_photo() -> None:
    first, again = probe_photos(per_kind=2), probe_photos(per_kind=2)
    assert set(first) == {*DRAWINGS, "noise", "photo"} and first == again
    for kind, photos in first.items():
        assert photos, kind
        with Image.open(io.BytesIO(photos[0])) as image:
            assert image.format == "JPEG" and min(image.size) >= 64
    assert len(set(first["ball"])) == 2  # each seed its own drawing
    shipped = shipped_photos()
    assert shipped and not any("skimage" in str(path) for path in shipped)
    assert len(first["photo"]) == 6 * len(shipped)  # each whole and in five crops
