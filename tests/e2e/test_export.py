"""`stj export`: each format gives the registered model's probabilities, and nothing half-written is left
beside it. On the session's tiny registered model (``registry``), which has an OpenVINO embedder logged as
training logs one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "saved_model"])
def test_export_gives_the_registered_models_probabilities(tmp_path, registry, stj, fmt) -> None:
    import mlflow

    from core.logged_model import load_logged_model
    from core.model_input import load_images

    out = tmp_path / "out"
    proc = stj(["export", "-c", "configs/demo.yaml", "--format", fmt, "--output", str(out)], registry.overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = out / fmt
    description = json.loads((folder / "stj.json").read_text())
    assert description["class_names"] == ["saree", "trousers", "jeans"]
    assert description["source"].startswith("models:/")
    mlflow.set_tracking_uri(registry.uri)
    logged = load_logged_model(description["source"], with_embedder=False)
    rng = np.random.default_rng(0)
    photos = [tmp_path / f"photo-{i}.jpg" for i in range(4)]
    for photo in photos:
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(photo)
    pixels = load_images(photos, logged.image_size, resize=logged.resize)
    expected = logged.model.predict(pixels, verbose=0)
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(folder / description["file"]), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    elif fmt == "openvino":
        import openvino as ov

        compiled = ov.Core().compile_model(
            str(folder / description["file"]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
        )
        got = compiled(pixels)[0]  # f32 asked for: OpenVINO would pick bf16 on CPUs that have it
    else:
        import tensorflow as tf

        loaded = tf.saved_model.load(str(folder / description["file"]))  # kept: its variables live with it
        got = loaded.serve(tf.constant(pixels)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert [p.name for p in out.iterdir()] == [fmt]  # nothing half-written beside it
