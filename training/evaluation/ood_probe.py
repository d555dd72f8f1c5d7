"""Photos of things that are not garments, to measure how often the "none of these" index flags them.

Two kinds, none of them a catalog garment: **drawn** scenes and objects (a ball, a mug, a house, a tree, a
car, a clock, a flower, a bottle, a landscape, a page of text, a chessboard, noise), each from a seed, in
several colours, sizes and places, on plain, gradient or textured backgrounds; and **photographs that
installed packages ship** (matplotlib's portrait of Grace Hopper, scikit-learn's "china" and "flower"), whole
and in crops. scikit-image's sample photos are deliberately not used: they are kept for an independent check.

Config keys: none (sizes from the caller).
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIDE = 320  # drawn at this size; the model's input size is applied by the caller's decoding
Draw = Callable[[ImageDraw.ImageDraw, random.Random], None]


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return rng.randrange(256), rng.randrange(256), rng.randrange(256)


def _box(rng: random.Random, low: float = 0.3, high: float = 0.7) -> tuple[float, float, float]:
    """A centre and a half-size, in pixels."""
    half = SIDE * rng.uniform(low, high) / 2
    return rng.uniform(half, SIDE - half), rng.uniform(half, SIDE - half), half


def _ball(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    x, y, r = _box(rng)
    draw.ellipse((x - r, y - r, x + r, y + r), fill=_colour(rng), outline=(0, 0, 0), width=2)
    draw.arc((x - r * 0.8, y - r * 0.8, x + r * 0.8, y + r * 0.8), 200, 340, fill=(255, 255, 255), width=4)


def _mug(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    x, y, r = _box(rng, 0.3, 0.55)
    draw.rounded_rectangle((x - r * 0.7, y - r, x + r * 0.5, y + r), radius=8, fill=_colour(rng), outline=(0, 0, 0))
    draw.ellipse((x + r * 0.3, y - r * 0.5, x + r, y + r * 0.4), outline=_colour(rng), width=max(3, int(r / 8)))


def _house(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    x, y, r = _box(rng, 0.4, 0.7)
    draw.rectangle((x - r, y - r * 0.2, x + r, y + r), fill=_colour(rng))
    draw.polygon([(x - r * 1.1, y - r * 0.2), (x, y - r), (x + r * 1.1, y - r * 0.2)], fill=_colour(rng))
    draw.rectangle((x - r * 0.2, y + r * 0.3, x + r * 0.2, y + r), fill=_colour(rng))
    draw.rectangle((x + r * 0.4, y + r * 0.05, x + r * 0.8, y + r * 0.4), fill=(180, 220, 255), outline=(0, 0, 0))


def _tree(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    x, y, r = _box(rng, 0.5, 0.8)
    draw.rectangle((x - r * 0.12, y, x + r * 0.12, y + r), fill=(110, 70, 30))
    green = (rng.randrange(20, 90), rng.randrange(110, 200), rng.randrange(20, 90))
    for _ in range(6):
        dx, dy, size = rng.uniform(-0.4, 0.4) * r, rng.uniform(-0.8, 0.1) * r, rng.uniform(0.3, 0.5) * r
        draw.ellipse((x + dx - size, y + dy - size, x + dx + size, y + dy + size), fill=green)


def _car(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    x, y, r = _box(rng, 0.5, 0.8)
    body = _colour(rng)
    draw.rounded_rectangle((x - r, y - r * 0.2, x + r, y + r * 0.3), radius=10, fill=body)
    draw.rounded_rectangle((x - r * 0.5, y - r * 0.6, x + r * 0.4, y - r * 0.1), radius=10, fill=body)
    draw.rectangle((x - r * 0.4, y - r * 0.5, x + r * 0.3, y - r * 0.2), fill=(170, 210, 240))
    for wx in (x - r * 0.6, x + r * 0.6):
        draw.ellipse((wx - r * 0.22, y + r * 0.1, wx + r * 0.22, y + r * 0.54), fill=(20, 20, 20))


def _clock(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    x, y, r = _box(rng)
    draw.ellipse((x - r, y - r, x + r, y + r), fill=(245, 245, 240), outline=_colour(rng), width=6)
    for hour in range(12):
        angle = hour * math.pi / 6
        draw.line((x + r * 0.8 * math.sin(angle), y - r * 0.8 * math.cos(angle),
                   x + r * 0.9 * math.sin(angle), y - r * 0.9 * math.cos(angle)), fill=(0, 0, 0), width=3)  # fmt: skip
    for length, angle in ((0.5, rng.uniform(0, 2 * math.pi)), (0.75, rng.uniform(0, 2 * math.pi))):
        draw.line((x, y, x + r * length * math.sin(angle), y - r * length * math.cos(angle)), fill=(0, 0, 0), width=4)


def _flower(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    x, y, r = _box(rng)
    draw.line((x, y, x, min(SIDE, y + r * 1.6)), fill=(40, 140, 40), width=6)
    petal = _colour(rng)
    for i in range(rng.randrange(5, 9)):
        angle = i * 2 * math.pi / 7
        px, py = x + r * 0.5 * math.cos(angle), y + r * 0.5 * math.sin(angle)
        draw.ellipse((px - r * 0.35, py - r * 0.35, px + r * 0.35, py + r * 0.35), fill=petal)
    draw.ellipse((x - r * 0.25, y - r * 0.25, x + r * 0.25, y + r * 0.25), fill=(240, 200, 40))


def _bottle(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    x, y, r = _box(rng, 0.5, 0.8)
    glass = _colour(rng)
    draw.rounded_rectangle((x - r * 0.3, y - r * 0.3, x + r * 0.3, y + r), radius=12, fill=glass)
    draw.rectangle((x - r * 0.1, y - r, x + r * 0.1, y - r * 0.3), fill=glass)
    draw.rectangle((x - r * 0.3, y + r * 0.1, x + r * 0.3, y + r * 0.5), fill=_colour(rng))


def _landscape(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    horizon = SIDE * rng.uniform(0.4, 0.7)
    sky, ground = (rng.randrange(80, 160), rng.randrange(150, 220), 255), (rng.randrange(40, 120), 150, 60)
    for row in range(int(horizon)):
        shade = row / horizon
        draw.line((0, row, SIDE, row), fill=tuple(int(c * (0.7 + 0.3 * shade)) for c in sky))
    draw.rectangle((0, horizon, SIDE, SIDE), fill=ground)
    peaks = [(0, horizon)] + [(SIDE * (i + rng.random()) / 4, horizon - SIDE * rng.uniform(0.1, 0.3)) for i in range(4)]
    draw.polygon([*peaks, (SIDE, horizon)], fill=(110, 110, 130))
    sx, sy = rng.uniform(0.1, 0.9) * SIDE, rng.uniform(0.05, 0.3) * SIDE
    draw.ellipse((sx - 20, sy - 20, sx + 20, sy + 20), fill=(255, 230, 90))


def _text(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    ink = (rng.randrange(80), rng.randrange(80), rng.randrange(80))
    for line in range(rng.randrange(6, 14)):
        words = " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randrange(2, 9)))
                         for _ in range(6))  # fmt: skip
        draw.text((12, 12 + line * 22), words, fill=ink)


def _chessboard(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    cells, dark = rng.randrange(4, 12), _colour(rng)
    size = SIDE / cells
    for i in range(cells):
        for j in range(cells):
            if (i + j) % 2:
                draw.rectangle((i * size, j * size, (i + 1) * size, (j + 1) * size), fill=dark)


DRAWINGS: dict[str, Draw] = {
    "ball": _ball,
    "mug": _mug,
    "house": _house,
    "tree": _tree,
    "car": _car,
    "clock": _clock,
    "flower": _flower,
    "bottle": _bottle,
    "landscape": _landscape,
    "text": _text,
    "chessboard": _chessboard,
}


def _background(rng: random.Random) -> Image.Image:
    kind = rng.choice(("plain", "gradient", "noise"))
    if kind == "plain":
        return Image.new("RGB", (SIDE, SIDE), _colour(rng))
    if kind == "gradient":
        top, bottom = _colour(rng), _colour(rng)
        column = Image.new("RGB", (1, SIDE))
        for row in range(SIDE):
            t = row / (SIDE - 1)
            column.putpixel((0, row), tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
        return column.resize((SIDE, SIDE))
    return Image.blend(_noise(rng, rng.uniform(20, 80)), Image.new("RGB", (SIDE, SIDE), _colour(rng)), 0.5)


def _noise(rng: random.Random, sigma: float) -> Image.Image:
    """Grey noise around mid-grey, drawn from ``rng`` (Pillow's own noise is not seeded)."""
    values = np.random.default_rng(rng.getrandbits(64)).normal(128, sigma, (SIDE, SIDE)).clip(0, 255)
    return Image.fromarray(values.astype(np.uint8)).convert("RGB")


def drawn_photo(kind: str, seed: int) -> bytes:
    """One drawn non-garment photo of ``kind`` (a key of :data:`DRAWINGS`, or ``noise``), as JPEG bytes."""
    rng = random.Random(f"{kind}-{seed}")
    if kind == "noise":
        image = _noise(rng, rng.uniform(30, 120))
        image = Image.merge("RGB", [image.getchannel(0).point(lambda v, s=s: (v * s) % 256) for s in (1, 3, 7)])
    else:
        image = _background(rng)
        DRAWINGS[kind](ImageDraw.Draw(image), rng)
        if rng.random() < 0.3:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def shipped_photos() -> list[Path]:
    """Photographs that installed packages ship (none of scikit-image's); those found."""
    found = []
    try:
        import matplotlib

        found.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    except ImportError:
        pass
    try:
        import sklearn

        found += [Path(sklearn.__file__).parent / "datasets" / "images" / name for name in ("china.jpg", "flower.jpg")]
    except ImportError:
        pass
    return [path for path in found if path.exists()]


def _crops(data: bytes) -> Iterator[bytes]:
    """The photo whole, then its four quadrants and its centre (each a photo of its own)."""
    yield data
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGB")
        w, h = image.size
        boxes = [(0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2), (0, h // 2, w // 2, h), (w // 2, h // 2, w, h),
                 (w // 4, h // 4, 3 * w // 4, 3 * h // 4)]  # fmt: skip
        for box in boxes:
            buffer = io.BytesIO()
            image.crop(box).save(buffer, "JPEG", quality=90)
            yield buffer.getvalue()


def probe_photos(per_kind: int = 10) -> dict[str, list[bytes]]:
    """The probe set, by kind: ``per_kind`` drawings of each drawn kind and of noise, and every shipped
    photograph with its crops (``photo``)."""
    kinds = {kind: [drawn_photo(kind, seed) for seed in range(per_kind)] for kind in [*DRAWINGS, "noise"]}
    kinds["photo"] = [crop for path in shipped_photos() for crop in _crops(path.read_bytes())]
    return kinds
