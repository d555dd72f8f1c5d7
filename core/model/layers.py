"""Preprocessing layers that live inside the model, registered so a saved model loads in safe mode.

The exported model takes raw RGB pixels (0..255); each backbone's own input scaling is one of these
layers, so serving never re-implements it. Importing ``core.model`` registers them.
"""

from __future__ import annotations

import keras
from keras import layers

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="stj")
class ResNetPreprocess(layers.Layer):
    """ResNet50's caffe-style preprocessing (RGB->BGR, subtract ImageNet means) as a saveable layer."""

    def call(self, inputs):
        bgr = keras.ops.flip(inputs, axis=-1)
        return bgr - keras.ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=inputs.dtype)


@keras.saving.register_keras_serializable(package="stj")
class LitePreprocess(layers.Layer):
    """EfficientNet-Lite's input scaling, ``(x - 127) / 128``, as a saveable layer."""

    def call(self, inputs):
        return (inputs - 127.0) / 128.0
