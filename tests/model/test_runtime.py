"""The fast path (OpenVINO) agrees with the TensorFlow reference: embeddings and head predictions."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from scraper.catalog.draw import draw_product
from training.images import to_model_input
from training.model import build_base, build_classifier, build_embedder, build_head
from training.runtime import OpenVINORuntime, TensorFlowRuntime, cpu_supports_bf16, openvino_available

pytestmark = pytest.mark.skipif(not openvino_available(), reason="openvino is not installed")


def test_openvino_matches_tensorflow_reference() -> None:
    size = 96
    pixels = np.stack(
        [
            to_model_input(draw_product(label, s, 160), size)
            for label in ("saree", "trousers", "jeans")
            for s in range(4)
        ]
    )
    embedder = build_embedder(build_base(size, None, seed=3), size)
    reference = TensorFlowRuntime(embedder)(pixels)
    fast = OpenVINORuntime(embedder, "bf16" if cpu_supports_bf16() else "f32")
    features = fast(pixels)
    cosine = (reference * features).sum(1) / np.linalg.norm(reference, axis=1) / np.linalg.norm(features, axis=1)
    assert cosine.min() >= 0.999, cosine  # stated tolerance: cosine >= 0.999 per image
    head = build_head(3, (256, 128), (0.3, 0.2), reference)
    head.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="sparse_categorical_crossentropy")
    labels = np.repeat([0, 1, 2], 4)
    keras.utils.set_random_seed(0)
    head.fit(reference, labels, epochs=40, verbose=0)  # a trained head: decisive predictions to compare
    ref_probs = head.predict(reference, verbose=0)
    fast_probs = head.predict(features, verbose=0)
    np.testing.assert_allclose(ref_probs, fast_probs, atol=0.02)
    top2 = np.sort(ref_probs, axis=1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) > 0.04  # 2x the probability tolerance: a flip there is a real change
    assert decisive.sum() >= len(pixels) // 2
    np.testing.assert_array_equal(ref_probs.argmax(1)[decisive], fast_probs.argmax(1)[decisive])
    # and the whole exported network through OpenVINO agrees with head(embedder) in TensorFlow
    whole = OpenVINORuntime(build_classifier(embedder, head), "bf16" if cpu_supports_bf16() else "f32")
    np.testing.assert_allclose(whole(pixels), ref_probs, atol=0.02)
