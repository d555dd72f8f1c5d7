"""Worst-case uploads: time and peak memory to turn each into model input, bounded vs unbounded decoding.

Each case is a small file declaring a huge picture (or a large real-looking photo). Each is decoded once in a
fresh process (so peak RSS is that upload's alone) two ways: the server's path (``decode_upload``: JPEG draft
mode, a decoded-pixel limit relative to the model input, truncation check) and the plain path (full decode,
then resize) as the peer. Goal: every upload <= 100 MiB extra and <= 200 ms on the server's path.

Usage: .venv/bin/python benchmarks/uploads.py [--image-size 224]
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_MIB, GOAL_MS = 100, 200


def _encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _photo_like(size: tuple[int, int]) -> Image.Image:
    """Smooth colour fields with noise: compresses like a photo, not like a flat drawing."""
    small = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.BICUBIC)
    noise = np.random.default_rng(1).integers(-12, 12, (size[1], size[0], 3))
    return Image.fromarray(np.clip(np.asarray(img, np.int16) + noise, 0, 255).astype(np.uint8))


def _declaring(side: int) -> bytes:
    """A 64x64 JPEG whose header declares ``side``x``side`` (libjpeg would fill the rest with grey)."""
    data = bytearray(_encode(_photo_like((64, 64)), "JPEG", quality=80))
    at = data.find(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def worst_cases() -> dict[str, bytes]:
    """The uploads the server must survive cheaply, by name."""
    flat = Image.new("RGB", (7000, 7000), (200, 30, 30))
    return {
        "webp 7000² lossless flat": _encode(flat, "WEBP", lossless=True),
        "png 7000² flat": _encode(flat, "PNG"),
        "gif 7000² flat": _encode(flat.convert("P"), "GIF"),
        "jpeg 7000² flat": _encode(flat, "JPEG", quality=10),
        "jpeg 7000² progressive": _encode(flat, "JPEG", quality=10, progressive=True),
        "jpeg 64² data declaring 7000²": _declaring(7000),
        "jpeg 4032x3024 photo": _encode(_photo_like((4032, 3024)), "JPEG", quality=90),
        "jpeg 4000x3000 progressive": _encode(_photo_like((4000, 3000)), "JPEG", quality=90, progressive=True),
        "png 2600x2600 photo": _encode(_photo_like((2600, 2600)), "PNG"),
        "png 1990x1990 photo": _encode(_photo_like((1990, 1990)), "PNG"),
    }


def _status_kib(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def measure_one(path: Path, image_size: int, bounded: bool) -> dict:
    """Decode one upload in this process; its outcome, milliseconds and peak RSS above the warm baseline."""
    from core.images import ImageRejected, open_image
    from core.model_input import to_model_input
    from serving.errors import ApiError
    from serving.uploads import decode_upload

    data = path.read_bytes()
    decode_upload(_encode(Image.new("RGB", (32, 32)), "JPEG"), image_size)  # imports and first-use costs
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak (VmHWM) starts again from the RSS now
    before = _status_kib("VmHWM")
    started = time.perf_counter()
    try:
        if bounded:
            decode_upload(data, image_size)
        else:
            to_model_input(open_image(data), image_size)
        outcome = "ok"
    except (ApiError, ImageRejected) as exc:
        outcome = f"refused ({getattr(exc, 'status', '')}{getattr(exc, 'reason', '')})"
    ms = (time.perf_counter() - started) * 1000
    extra = (_status_kib("VmHWM") - before) / 1024
    return {"outcome": outcome, "ms": ms, "extra_mib": extra}


def measure(path: Path, image_size: int, bounded: bool) -> dict:
    """:func:`measure_one` in a fresh interpreter (peak RSS cannot be reset within a process)."""
    out = subprocess.run(
        [sys.executable, __file__, "--one", str(path), "--image-size", str(image_size)]
        + ([] if bounded else ["--unbounded"]),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--unbounded", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.image_size, bounded=not args.unbounded)))
        return
    worst = {"ms": 0.0, "extra_mib": 0.0}
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'upload':32} {'bytes':>9}  {'server path':>34}  {'plain decode (peer)':>34}")
        for name, data in worst_cases().items():
            path = Path(folder) / "upload"
            path.write_bytes(data)
            ours, peer = measure(path, args.image_size, True), measure(path, args.image_size, False)
            worst = {k: max(worst[k], ours[k]) for k in worst}
            print(
                f"{name:32} {len(data):>9}  {ours['outcome'][:14]:>14} {ours['ms']:6.0f} ms {ours['extra_mib']:5.0f} MiB"
                f"  {peer['outcome'][:14]:>14} {peer['ms']:6.0f} ms {peer['extra_mib']:5.0f} MiB"
            )
    print(
        f"worst on the server path: {worst['ms']:.0f} ms (goal <= {GOAL_MS}), "
        f"{worst['extra_mib']:.0f} MiB extra (goal <= {GOAL_MIB})"
    )


if __name__ == "__main__":
    main()
