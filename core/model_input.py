"""Decode and resize photos into model input. One code path for training, evaluation and serving.

The network takes raw RGB pixels (0..255, float32, ``image_size`` square); the backbone's own
preprocessing lives inside the model (``core.model.layers``).

Config keys: ``train.image_size``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from core.images import to_rgb

SQUASH, CENTER_CROP = "squash", "center_crop"


def to_model_input(img: Image.Image, image_size: int, resize: str = SQUASH) -> np.ndarray:
    """An upright RGB image as ``image_size``² float32 pixels.

    ``squash`` (STJ's models: the same resize in training and serving) stretches the whole photo;
    ``center_crop`` (ImageNet's evaluation: shorter side to 256/224 of the size, then the centre) keeps the
    aspect ratio, as the ImageNet classifier was trained.
    """
    img = to_rgb(img)
    if resize == CENTER_CROP:
        scale = image_size * 256 / 224 / min(img.size)
        img = img.resize(
            (max(image_size, round(img.width * scale)), max(image_size, round(img.height * scale))), Image.BILINEAR
        )
        left, top = (img.width - image_size) // 2, (img.height - image_size) // 2
        img = img.crop((left, top, left + image_size, top + image_size))
    else:
        img = img.resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32)


def decode_image(data: bytes, image_size: int, resize: str = SQUASH) -> np.ndarray:
    """Decode image bytes (first frame) into model input; raises PIL/OSError errors for bad data."""
    with Image.open(io.BytesIO(data)) as img:
        img.seek(0)
        img.load()
        return to_model_input(img, image_size, resize)


def load_images(paths: Sequence[str | Path], image_size: int, workers: int = 4, resize: str = SQUASH) -> np.ndarray:
    """Decode and resize many files in parallel (Pillow releases the GIL while decoding)."""

    def one(path: str | Path) -> np.ndarray:
        return decode_image(Path(path).read_bytes(), image_size, resize)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(one, paths))
    if not arrays:
        return np.zeros((0, image_size, image_size, 3), np.float32)
    return np.stack(arrays)
