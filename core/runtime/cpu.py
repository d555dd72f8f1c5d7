"""What this machine's CPU offers OpenVINO, asked once per process."""

from __future__ import annotations

import functools
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
    """Whether OpenVINO reports bf16 support on this CPU."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@functools.cache
def cpu_has_int8_dot() -> bool:
    """Whether the CPU has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX-INT8); without them
    OpenVINO still runs int8 models, but no faster than bf16/f32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


def compile_hint() -> str:
    """The precision OpenVINO uses for the layers of a model that are not int8."""
    return "bf16" if cpu_supports_bf16() else "f32"
