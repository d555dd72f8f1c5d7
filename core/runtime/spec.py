"""The runtime as one typed value: which engine runs a model, at which precision, on which device.

Chosen once per run (``training.embedding.precision``), written to the logged model, and part of the embedding
cache key. Its ``name`` (``openvino-int8``, ``tensorflow-f32``) is what tags and logs show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

Backend = Literal["tensorflow", "openvino"]
Precision = Literal["f32", "bf16", "int8"]
_LEGACY = {"fp32": "f32"}  # names written by earlier versions


class Runtime(Protocol):
    """Maps a float32 batch to the model's output."""

    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class RuntimeSpec:
    """Which runtime: ``backend`` at ``precision`` on ``device``."""

    backend: Backend
    precision: Precision
    device: str = "CPU"

    @property
    def name(self) -> str:
        """``<backend>-<precision>``, as tags and logs show it."""
        return f"{self.backend}-{self.precision}"

    @property
    def is_int8(self) -> bool:
        """Whether it needs a calibrated int8 model."""
        return self.precision == "int8"

    @classmethod
    def parse(cls, name: str) -> RuntimeSpec:
        """The spec a :attr:`name` stands for (``openvino-bf16``; ``tensorflow-fp32`` from older runs too).

        Raises:
            ValueError: not a runtime name.
        """
        backend, _, precision = name.partition("-")
        precision = _LEGACY.get(precision, precision)
        if backend not in ("tensorflow", "openvino") or precision not in ("f32", "bf16", "int8"):
            raise ValueError(f"not a runtime name: {name!r}")
        if backend == "tensorflow" and precision != "f32":
            raise ValueError(f"TensorFlow runs f32 only, not {precision}")
        return cls(backend, precision)  # type: ignore[arg-type]
