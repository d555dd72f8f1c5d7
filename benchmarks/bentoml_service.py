"""The peer a user would pick instead of `stj serve`: BentoML serving the same OpenVINO model, with its adaptive
batching.

Run by ``benchmarks/serve.py`` in a virtualenv of its own (``.venv-bentoml``: BentoML's pins are not STJ's):
``bentoml serve benchmarks.bentoml_service:Classifier``, with ``STJ_BENTO_MODEL`` naming a folder that the
benchmark wrote from the champion: ``embedder.xml`` (the embedder exactly as training logged it, e.g. int8),
``head.xml`` and ``meta.json`` (class names, input size, the embedder's precision hint). A photo is decoded
as STJ decodes it (RGB, squashed to the input size, bilinear), then embedder and head run on each batch
BentoML forms. ``POST /predict`` takes multipart field ``images`` (one photo per request here) and answers
the label and confidence of each. Imports only BentoML, OpenVINO, NumPy and Pillow.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import bentoml
import numpy as np
from PIL import Image

sys.modules.setdefault("openvino_telemetry", None)  # no usage telemetry, as STJ's own processes
import openvino as ov  # noqa: E402

MODEL = Path(os.environ.get("STJ_BENTO_MODEL", "bento-model"))


@bentoml.service(workers=1, traffic={"timeout": 60})
class Classifier:
    """The champion on OpenVINO: embedder, then head."""

    def __init__(self) -> None:
        meta = json.loads((MODEL / "meta.json").read_text())
        self.class_names, self.size = meta["class_names"], int(meta["image_size"])
        core = ov.Core()
        self.embedder = core.compile_model(
            core.read_model(MODEL / "embedder.xml"), "CPU", {"INFERENCE_PRECISION_HINT": meta["hint"]}
        )
        self.head = core.compile_model(core.read_model(MODEL / "head.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    @bentoml.api(batchable=True, max_batch_size=16, max_latency_ms=1000)
    def predict(self, images: list[Image.Image]) -> list[dict]:
        """Label and confidence of each photo."""
        pixels = np.stack([np.asarray(i.convert("RGB").resize((self.size, self.size), Image.BILINEAR), np.float32)
                           for i in images])  # fmt: skip
        probs = self.head(self.embedder(pixels)[0])[0]
        return [
            {"label": self.class_names[int(row.argmax())], "confidence": round(float(row.max()), 6)} for row in probs
        ]
