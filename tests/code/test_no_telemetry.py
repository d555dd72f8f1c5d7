"""STJ never phones home: converting a model with OpenVINO sends no telemetry and writes nothing to the home
folder (OpenVINO's converter otherwise sends usage data from a process it forks off a thread)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

CONVERT = textwrap.dedent(
    """
    import keras
    from core.runtime.openvino import convert_to_openvino

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs)))
    convert_to_openvino(model)
    print("converted")
    """
)


def test_converting_a_model_sends_no_telemetry(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "CI": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", CONVERT], capture_output=True, text=True, env=env, timeout=300)
    assert done.stdout.strip() == "converted", done.stderr[-2000:]
    assert not (tmp_path / "intel").exists(), sorted(p.name for p in (tmp_path / "intel").iterdir())
