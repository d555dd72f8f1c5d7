"""Grad-CAM: which parts of the photo drove the predicted class, as a heatmap over the photo.

Gradients of the class probability with respect to the base's last convolutional feature map (the base's
output, whatever the backbone), averaged per channel, weight that map; the positive part, upsampled, is the
heatmap. Runs on the Keras model in TensorFlow (the fast runtime has no gradients).
"""

from __future__ import annotations

import io

import keras
import numpy as np
from PIL import Image


def grad_cam(classifier: keras.Model, pixels: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, int]:
    """Heatmap in [0, 1] at the input size, and the class it explains (default: the predicted one)."""
    import tensorflow as tf

    embedder = classifier.get_layer("embedder")
    head = classifier.get_layer("head")
    preprocess = embedder.get_layer("preprocess")
    base = next(layer for layer in embedder.layers if isinstance(layer, keras.Model))  # the frozen base
    x = tf.constant(pixels[None], tf.float32)
    with tf.GradientTape() as tape:
        conv = base(preprocess(x), training=False)
        tape.watch(conv)
        probs = head(tf.reduce_mean(conv, axis=(1, 2)), training=False)
        target = int(tf.argmax(probs[0])) if class_index is None else class_index
        score = probs[:, target]
    grads = tape.gradient(score, conv)[0]
    weights = tf.reduce_mean(grads, axis=(0, 1))
    cam = tf.nn.relu(tf.reduce_sum(conv[0] * weights, axis=-1)).numpy()
    cam = cam / cam.max() if cam.max() > 0 else cam
    size = pixels.shape[:2]
    heat = np.asarray(Image.fromarray((cam * 255).astype(np.uint8)).resize(size[::-1], Image.BILINEAR)) / 255.0
    return heat, target


def overlay_png(pixels: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> bytes:
    """The photo with the heatmap blended over it (blue = cold, red = hot), as PNG."""
    red = np.clip(heat * 2, 0, 1)
    blue = np.clip(2 - heat * 2, 0, 1) * (heat > 0.05)
    colour = np.stack([red, np.clip(1 - np.abs(heat - 0.5) * 2, 0, 1), blue], axis=-1) * 255
    mixed = pixels * (1 - alpha * (heat[..., None] > 0.05)) + colour * alpha * (heat[..., None] > 0.05)
    buf = io.BytesIO()
    Image.fromarray(mixed.clip(0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()
