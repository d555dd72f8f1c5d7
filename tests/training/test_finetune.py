"""Fine-tuning unfreezes only the top of the base, leaves BatchNorm alone, and changes the unfrozen layers."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from PIL import Image

from catalog.draw import draw_product
from catalog.settings import DRAWN_CLASSES
from configs.schema import FineTuneConfig
from core.model import build_classifier, build_frozen, build_head, get_backbone
from core.model_input import load_images, to_model_input
from training.fitting.finetune import cutmix, fine_tune, image_dataset, unfreeze


def _files(folder: Path, pixels: np.ndarray) -> list[Path]:
    """Each image as a PNG (lossless: decoding gives the same pixels back)."""
    paths = [folder / f"{i}.png" for i in range(len(pixels))]
    for path, image in zip(paths, pixels, strict=True):
        Image.fromarray(image.astype(np.uint8)).save(path)
    return paths


def test_fine_tune_moves_top_layers_only(tmp_path: Path) -> None:
    size = 32
    base, embedder = build_frozen("resnet50", size, seed=1)
    labels = np.array([i % 3 for i in range(24)])
    pixels = np.stack([to_model_input(draw_product(DRAWN_CLASSES[y], i, 64), size) for i, y in enumerate(labels)])
    paths = _files(tmp_path, pixels)
    head = build_head(3, (16, 8), (0.3, 0.2), embedder.predict(pixels, verbose=0))
    classifier = build_classifier(embedder, head)
    bn = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    before_bn = [w.copy() for layer in bn for w in layer.get_weights()]
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in base.layers if layer.weights}
    history = fine_tune(
        classifier,
        base,
        (paths[:18], labels[:18]),
        (paths[18:], labels[18:]),
        3,
        FineTuneConfig(enabled=True, unfreeze_layers=4, epochs=1, batch_size=6, cutmix=True),
        seed=0,
        trainable=get_backbone("resnet50").finetune_layers(base, 4),
    )
    assert len(history["loss"]) == 1
    changed = {
        name
        for name, ws in before.items()
        if any(not np.array_equal(a, b) for a, b in zip(ws, base.get_layer(name).get_weights(), strict=True))
    }
    top = [layer.name for layer in base.layers if layer.weights][-4:]
    assert changed and changed <= set(top)
    for a, b in zip(before_bn, [w for layer in bn for w in layer.get_weights()], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not base.trainable


def test_unfreeze_top_skips_batchnorm() -> None:
    base = build_frozen("resnet50", 32, seed=0)[0]
    names = unfreeze(base, get_backbone("resnet50").finetune_layers(base, 6))
    assert names and all("bn" not in n for n in names)
    assert {layer.name for layer in base.layers if layer.trainable and layer.weights} == set(names)


def test_cutmix_mixes_labels_by_area() -> None:
    images = np.stack([np.zeros((16, 16, 3)), np.ones((16, 16, 3))]).astype("float32")
    labels = np.eye(2, dtype="float32")
    mixed, mixed_labels = cutmix(images, labels, seed=3)
    area = [float(np.mean(m.numpy() != i)) for i, m in enumerate(mixed)]
    np.testing.assert_allclose(mixed_labels.numpy().sum(axis=1), 1.0, atol=1e-6)
    for i in range(2):
        if area[i] > 0:  # pasted from the other image: label weight equals the pasted area
            np.testing.assert_allclose(mixed_labels.numpy()[i][1 - i], area[i], atol=1e-6)


def test_fine_tuning_a_copy_leaves_the_shared_base_pretrained(tmp_path: Path) -> None:
    """Sweep points and siblings share one base: fine-tuning works on a copy, so the next starts from the same."""
    from training.fitting.candidate import own_copy

    base, embedder = build_frozen("resnet50", 32, seed=1)
    copy, copied_base = own_copy(embedder, base.name)
    assert copied_base is not base
    pixels = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(copy.predict(pixels, verbose=0), embedder.predict(pixels, verbose=0))
    before = [w.copy() for w in base.get_weights()]
    labels = np.array([0, 1, 2, 0, 1, 2])
    head = build_head(3, (16, 8), (0.3, 0.2), embedder.predict(pixels, verbose=0))
    fine_tune(
        build_classifier(copy, head),
        copied_base,
        (_files(tmp_path, pixels), labels),
        (_files(tmp_path, pixels), labels),
        3,
        FineTuneConfig(enabled=True, unfreeze_layers=4, epochs=1, batch_size=6),
        seed=0,
        trainable=get_backbone("resnet50").finetune_layers(copied_base, 4),
    )
    assert any(not np.array_equal(a, b) for a, b in zip(base.get_weights(), copied_base.get_weights(), strict=True))
    for a, b in zip(before, base.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_photos_stream_from_their_files_as_loading_them_would_give(tmp_path: Path) -> None:
    """The fine-tuning stream decodes as training and serving do, in order; shuffled, every photo once per epoch
    with its own label, in another order each epoch."""
    pixels = np.random.default_rng(1).integers(0, 256, (10, 40, 24, 3))
    paths, labels = _files(tmp_path, pixels), np.arange(10) % 3
    batches = list(image_dataset(paths, labels, 3, image_size=16, batch_size=4))
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), load_images(paths, 16))
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]).argmax(axis=1), labels)

    shuffled = image_dataset(paths, labels, 3, image_size=16, batch_size=4, shuffle_seed=0)
    reference = {load_images([p], 16)[0].tobytes(): label for p, label in zip(paths, labels, strict=True)}
    orders = []
    for _ in range(2):
        seen = [
            (x.tobytes(), int(y.argmax())) for xs, ys in shuffled for x, y in zip(xs.numpy(), ys.numpy(), strict=True)
        ]
        assert dict(seen) == reference and len(seen) == 10
        orders.append([key for key, _ in seen])
    assert orders[0] != orders[1]
