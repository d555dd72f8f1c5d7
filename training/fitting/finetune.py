"""Optional fine-tuning: after the head converges, unfreeze the top of the base and train on augmented images.

BatchNorm layers stay frozen and in inference mode (the base is called with ``training=False``), the
learning rate is low, augmentation (flip, crop, brightness, contrast, optional CutMix) applies to the
training images only, and early stopping restores the best epoch. Photos stream from their files, decoded a
batch at a time (memory does not grow with N). Skipped when the base weights are
``none``: there is nothing pretrained to adapt.

Config keys: ``train.finetune.*``, ``train.weights``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from keras import layers

from configs.schema import FineTuneConfig
from core.model_input import decode_image
from training.fitting.fit import EpochProgress, SafePoints

log = logging.getLogger(__name__)


def unfreeze(base: keras.Model, chosen: list[layers.Layer]) -> list[str]:
    """Make exactly the ``chosen`` layers of ``base`` trainable (the backbone chooses them); returns their names."""
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer in chosen
    return [layer.name for layer in chosen]


def augmenter(image_size: int, seed: int) -> keras.Sequential:
    """Flip, crop (zoom + shift), brightness and contrast jitter, for training images only."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomZoom((-0.15, 0.0), seed=seed),
            layers.RandomTranslation(0.05, 0.05, seed=seed),
            layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed),
            layers.RandomContrast(0.15, seed=seed),
        ],
        name="augment",
    )


def cutmix(images, labels, seed: int, batch_index=0):
    """CutMix on one batch: paste a random box from a shuffled copy and mix the one-hot labels by area.

    The box and pairing are a function of ``(seed, batch_index)``.
    """
    import tensorflow as tf

    def key(k: int):
        return tf.stack([tf.cast(seed, tf.int64), tf.cast(batch_index, tf.int64) * 4 + k])

    size = tf.shape(images)[1]
    n = tf.shape(images)[0]
    lam = tf.random.stateless_uniform([], seed=key(0))
    cut = tf.cast(tf.cast(size, tf.float32) * tf.sqrt(1.0 - lam), tf.int32)
    y0 = tf.random.stateless_uniform([], seed=key(1), minval=0, maxval=size - cut + 1, dtype=tf.int32)
    x0 = tf.random.stateless_uniform([], seed=key(2), minval=0, maxval=size - cut + 1, dtype=tf.int32)
    rows = tf.range(size)[:, None]
    cols = tf.range(size)[None, :]
    box = tf.cast((rows >= y0) & (rows < y0 + cut) & (cols >= x0) & (cols < x0 + cut), images.dtype)[None, :, :, None]
    order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=key(3))
    mixed = images * (1 - box) + tf.gather(images, order) * box
    area = tf.cast(cut * cut, tf.float32) / tf.cast(size * size, tf.float32)
    return mixed, labels * (1 - area) + tf.gather(labels, order) * area


SHUFFLE_BUFFER = 10_000  # file names, not pixels (~100 B each): an exact shuffle up to this many photos


def image_dataset(
    paths: Sequence[str | Path],
    labels: np.ndarray,
    num_classes: int,
    image_size: int,
    batch_size: int,
    shuffle_seed: int | None = None,
):
    """Batches of (pixels, one-hot labels) decoded from ``paths`` as they are needed (``core.model_input``'s
    decoding, the one serving uses), in order or shuffled with a buffer of :data:`SHUFFLE_BUFFER` file names.

    Memory: the file names plus a few batches of pixels (two prefetched), whatever N; time O(N) per epoch."""
    import tensorflow as tf

    def decode(path: bytes) -> np.ndarray:
        return decode_image(Path(path.decode()).read_bytes(), image_size)

    def pixels(path, label):
        image = tf.numpy_function(decode, [path], tf.float32, stateful=False)
        return tf.ensure_shape(image, (image_size, image_size, 3)), label

    one_hot = np.eye(num_classes, dtype=np.float32)[np.asarray(labels, int)]
    data = tf.data.Dataset.from_tensor_slices(([str(p) for p in paths], one_hot))
    if shuffle_seed is not None:
        data = data.shuffle(min(len(paths), SHUFFLE_BUFFER), seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.map(pixels, num_parallel_calls=2, deterministic=True).batch(batch_size)


def fine_tune(
    classifier: keras.Model,
    base: keras.Model,
    train: tuple[Sequence[str | Path], np.ndarray],
    val: tuple[Sequence[str | Path], np.ndarray],
    num_classes: int,
    config: FineTuneConfig,
    seed: int,
    trainable: list[keras.layers.Layer],
) -> dict[str, list[float]]:
    """Fine-tune ``classifier`` (which contains ``base``) in place, training only the base's ``trainable`` layers,
    on the photos ``train`` and ``val`` name ((files, integer labels)), decoded a batch at a time
    (:func:`image_dataset`); returns the per-epoch history."""
    names = unfreeze(base, trainable)
    log.info("fine-tuning %d layers of the base: %s", len(names), ", ".join(names))
    size = classifier.input_shape[1]
    augment = augmenter(size, seed)
    data = image_dataset(*train, num_classes, size, config.batch_size, shuffle_seed=seed)
    data = data.map(lambda x, y: (augment(x, training=True), y))
    if config.cutmix:
        data = data.enumerate().map(lambda i, xy: cutmix(images=xy[0], labels=xy[1], seed=seed, batch_index=i))
    classifier.compile(  # recompile: trainable flags changed
        optimizer=keras.optimizers.RMSprop(learning_rate=config.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = classifier.fit(
        data.prefetch(2),
        validation_data=image_dataset(*val, num_classes, size, config.batch_size).prefetch(2),
        epochs=config.epochs,
        shuffle=False,  # the stream shuffles (file names, bounded buffer)
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True),
            EpochProgress(config.epochs, "fine-tune epochs"),
            SafePoints(),
        ],
    )
    base.trainable = False
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
