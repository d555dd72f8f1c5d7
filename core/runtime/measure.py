"""Throughput of a runtime, measured on this machine: how precisions are chosen (never from CPU flags)."""

from __future__ import annotations

import time

import numpy as np

from core.runtime.spec import Runtime


def throughput(runtime: Runtime, pixels: np.ndarray, batch_size: int, seconds: float = 1.0) -> float:
    """Images per second over repeated passes on ``pixels`` for at least ``seconds`` (one warm-up batch first)."""
    runtime(pixels[:batch_size])
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for i in range(0, len(pixels), batch_size):
            runtime(pixels[i : i + batch_size])
        done += len(pixels)
    return done / (time.perf_counter() - started)


def fastest_float(converted, image_size: int, batch_size: int = 8, seconds: float = 0.5):
    """``converted`` (an OpenVINO model) compiled in whichever float precision runs it faster here."""
    from core.runtime.cpu import float_precisions
    from core.runtime.openvino import OpenVINORuntime

    pixels = np.random.default_rng(0).uniform(0, 255, (batch_size, image_size, image_size, 3)).astype(np.float32)
    runtimes = [OpenVINORuntime(converted, precision) for precision in float_precisions()]
    return max(runtimes, key=lambda runtime: throughput(runtime, pixels, batch_size, seconds))
