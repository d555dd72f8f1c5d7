"""The fast paths (OpenVINO bf16/f32 and int8) agree with the TensorFlow reference: embeddings and head
predictions."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from catalog.draw import draw_product
from catalog.settings import DRAWN_CLASSES
from core.model import build_classifier, build_frozen, build_head, get_backbone
from core.model_input import to_model_input
from core.runtime import OpenVINORuntime, TensorFlowRuntime, convert_to_openvino
from core.runtime.cpu import float_precisions, openvino_available
from core.runtime.int8 import INT8_MIN_COSINE, int8_runtime

pytestmark = [
    pytest.mark.skipif(not openvino_available(), reason="openvino is not installed"),
    pytest.mark.slow,  # ResNet50 and Lite0 at full size, in every precision: ~2 min of the fast tier's 3
]


def _pixels(size: int, per_class: int, first_seed: int = 0) -> np.ndarray:
    seeds = range(first_seed, first_seed + per_class)
    return np.stack([to_model_input(draw_product(label, s, 160), size) for label in DRAWN_CLASSES for s in seeds])


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _assert_same_decisions(
    reference: np.ndarray, features: np.ndarray, atol: float, per_image: bool = True, margin: float | None = None
) -> np.ndarray:
    """Train a head on the reference features; its probabilities on ``features`` stay within ``atol`` (every
    probability, or on average when not ``per_image``) and its decisive predictions (top-2 margin over
    ``margin``, by default 2 x ``atol``) do not change."""
    head = build_head(3, (256, 128), (0.3, 0.2), reference)
    head.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="sparse_categorical_crossentropy")
    labels = np.repeat([0, 1, 2], len(reference) // 3)
    keras.utils.set_random_seed(0)
    head.fit(reference, labels, epochs=40, verbose=0)  # a trained head: decisive predictions to compare
    ref_probs = head.predict(reference, verbose=0)
    fast_probs = head.predict(features, verbose=0)
    if per_image:
        np.testing.assert_allclose(ref_probs, fast_probs, atol=atol)
    else:
        assert np.abs(ref_probs - fast_probs).mean() <= atol
    top2 = np.sort(ref_probs, axis=1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) > (2 * atol if margin is None else margin)  # a flip: a real change
    assert decisive.sum() >= len(reference) // 2
    np.testing.assert_array_equal(ref_probs.argmax(1)[decisive], fast_probs.argmax(1)[decisive])
    return head, ref_probs


# Stated tolerances: the worst cosine of a precision's features to TensorFlow FP32, per backbone, on drawn
# photos at 96 px. Measured here: ResNet50 (random base) >= 0.9999 in every precision; EfficientNet-Lite0
# (ImageNet) 1.0 in f32, 0.984 in bf16 (at 96 px), 0.90-0.95 in int8 with full bias correction (at 224 px,
# on photos it was not calibrated on). Depthwise convolutions are
# what makes Lite0 sensitive; whether a precision is *used* is decided by validation accuracy.
COSINE_FLOOR = {
    ("resnet50", "f32"): 0.999,
    ("resnet50", "bf16"): 0.999,
    ("resnet50", "int8"): 0.999,
    ("efficientnet_lite0", "f32"): 0.999,
    ("efficientnet_lite0", "bf16"): 0.97,
    ("efficientnet_lite0", "int8"): 0.92,
}


def _embedder(backbone: str, size: int):
    """A random ResNet50 (as the offline demo has it) or Lite0 with its ImageNet weights."""
    if backbone == "resnet50":
        return build_frozen("resnet50", size, seed=3)[1]
    spec = get_backbone(backbone)
    return build_frozen(spec, size, spec.resolve_weights("imagenet", "error"))[1]


@pytest.mark.parametrize("precision", float_precisions())
@pytest.mark.parametrize("backbone", ["resnet50", "efficientnet_lite0"])
def test_openvino_matches_tensorflow_reference(backbone: str, precision: str) -> None:
    size = 96
    pixels = _pixels(size, 4)
    embedder = _embedder(backbone, size)
    reference = TensorFlowRuntime(embedder)(pixels)
    fast = OpenVINORuntime(convert_to_openvino(embedder), precision)
    features = fast(pixels)
    cosine = _cosines(reference, features)
    assert cosine.min() >= COSINE_FLOOR[backbone, precision], cosine
    exact = COSINE_FLOOR[backbone, precision] >= 0.999  # near-identical features: every probability within 0.02
    head, ref_probs = _assert_same_decisions(
        reference, features, atol=0.02, per_image=exact, margin=None if exact else 0.4
    )
    # and the whole exported network through OpenVINO agrees with head(embedder) in TensorFlow
    whole = OpenVINORuntime(convert_to_openvino(build_classifier(embedder, head)), precision)
    np.testing.assert_allclose(whole(pixels), head.predict(features, verbose=0), atol=0.02)


# int8 at each backbone's realistic size: Lite0's 96 px feature map (3x3) quantises worse than its 224's.
@pytest.mark.parametrize(("backbone", "size"), [("resnet50", 96), ("efficientnet_lite0", 224)])
def test_int8_embeddings_match_the_fp32_reference(backbone: str, size: int, tmp_path) -> None:
    pixels = _pixels(size, 8)  # 24 images: calibrate on 16 of them, check on the other 8
    held_out = _pixels(size, 5, first_seed=100)  # and compare on 15 drawings it never saw
    embedder = _embedder(backbone, size)
    thorough = get_backbone(backbone).int8_thorough
    runtime, record = int8_runtime(embedder, tmp_path, "base", lambda: (pixels[:16], pixels[16:]), thorough=thorough)
    assert runtime is not None and record["accepted"], record
    assert record["mean_cosine_to_fp32"] >= INT8_MIN_COSINE
    reference = TensorFlowRuntime(embedder)(held_out)
    features = runtime(held_out)
    assert _cosines(reference, features).min() >= COSINE_FLOOR[backbone, "int8"]  # on unseen images
    # A head overfitted to 15 images is very sharp: measured, int8 moved one undecided image's probabilities
    # by 0.19 (0.45/0.55 became 0.64/0.36). So here the 0.02 tolerance holds on average, and predictions
    # with a top-2 margin over 0.4 (twice that largest move) must not change.
    _assert_same_decisions(reference, features, atol=0.02, per_image=False, margin=0.4)
    # a second call reuses the calibrated model: no images asked for, identical features
    again, _ = int8_runtime(embedder, tmp_path, "base", lambda: pytest.fail("calibrated twice"))
    np.testing.assert_array_equal(again(held_out), features)


def test_int8_is_refused_when_it_drifts_from_fp32(tmp_path, monkeypatch) -> None:
    import core.runtime.int8 as rt

    monkeypatch.setattr(rt, "INT8_MIN_COSINE", 1.0000001)  # nothing quantised can meet it
    size = 64
    pixels = _pixels(size, 2)
    embedder = build_frozen("resnet50", size, seed=3)[1]
    runtime, record = int8_runtime(embedder, tmp_path, "base", lambda: (pixels[:3], pixels[3:]))
    assert runtime is None and record["accepted"] is False
    assert not (tmp_path / "base-int8.xml").exists()
    again, _ = int8_runtime(embedder, tmp_path, "base", lambda: pytest.fail("recalibrated a refused base"))
    assert again is None  # the refusal is remembered


def test_photo_by_photo_calibration_gives_the_one_batch_model(monkeypatch) -> None:
    """The fast bias correction calibrates one photo per NNCF item (memory: one photo's activations at a time);
    its ranges are the global min and max, so the model is the one a single item of every photo gives."""
    import nncf

    from core.runtime.int8 import cpu_has_vnni, quantize_int8

    pixels = _pixels(64, 3)
    converted = convert_to_openvino(build_frozen("resnet50", 64, seed=3)[1])
    fed: list[int] = []
    dataset = nncf.Dataset

    class Counted(dataset):  # a class: NNCF uses nncf.Dataset in annotations it evaluates
        def __init__(self, items, *args, **kwargs) -> None:
            fed.append(len(items))
            super().__init__(items, *args, **kwargs)

    monkeypatch.setattr(nncf, "Dataset", Counted)
    _, per_photo, _ = quantize_int8(converted, pixels[:6], pixels[6:], thorough=False)
    assert fed == [6]  # six items of one photo each
    one_batch = nncf.quantize(  # how quantize_int8 called NNCF before: every photo in one item
        converted,
        dataset([pixels[:6]]),
        subset_size=1,
        preset=nncf.QuantizationPreset.MIXED,
        fast_bias_correction=True,
        advanced_parameters=nncf.AdvancedQuantizationParameters(overflow_fix=nncf.OverflowFix.ENABLE)
        if cpu_has_vnni() is False
        else None,
    )
    np.testing.assert_array_equal(per_photo(pixels), OpenVINORuntime(one_batch, "f32", "int8")(pixels))
