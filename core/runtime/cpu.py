"""What this machine's CPU can run with OpenVINO, asked once per process.

These say what *can* run, never what runs: which precision is fastest is measured on the machine at hand
(``core.runtime.measure``), because CPUs differ (measured: bf16 without AMX ran slower than f32 on a Xeon
with AVX512-BF16, and int8 ran 2x f32 on an EPYC without VNNI).
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path


@functools.cache
def openvino_available() -> bool:
    """Whether the OpenVINO runtime can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def cpu_supports_bf16() -> bool:
    """Whether OpenVINO can run bf16 on this CPU (natively or not)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def float_precisions() -> list[str]:
    """The float precisions OpenVINO can run here: ``f32``, and ``bf16`` where supported."""
    return ["f32", "bf16"] if cpu_supports_bf16() else ["f32"]


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (measurements are valid for this CPU only)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
