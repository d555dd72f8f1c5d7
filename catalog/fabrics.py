"""Colours, backgrounds and fabrics for the catalog's drawings (deterministic: every draw takes an ``rng``).

Each fabric is a square texture the garments in ``catalog.draw`` are cut from: plain, checked and striped
cloth for trousers, denim twill (with a faded wash) for jeans, and motif-woven silk for sarees.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]


def _rgb(codes: str) -> list[RGB]:
    """Colours written as hex codes, e.g. ``"ff0000 00ff00"``."""
    return [(int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)) for c in codes.split()]


CHINO_COLOURS = _rgb("c3b091 283458 3e60a0 787c82 555f3c 1e1e22 e1d7be 6e282d 966e50 4678be c8c8cd")
DENIM_COLOURS = _rgb("263a6e 344e8c 5a78aa 7d9bc3 1c1e24 464850 142446")
SAREE_COLOURS = _rgb("be1428 c81e78 14783c e68c14 283caa 6e1e82 f0c83c 148c96 faebdc 1e1e28 3c5aa0")
SHIRT_COLOURS: list[RGB] = [(240, 240, 240), (30, 30, 30), (170, 40, 40), (60, 110, 170), (90, 140, 90)]
SKIN: list[RGB] = [(224, 172, 105), (198, 134, 66), (141, 85, 36), (241, 194, 125)]
GOLD: list[RGB] = [(212, 175, 55), (230, 190, 80), (190, 150, 40), (240, 220, 150)]


def jitter(colour: RGB, rng: random.Random, amount: int = 18) -> RGB:
    """``colour`` with each channel moved by up to ``amount``."""
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)  # type: ignore[return-value]


def noise(img: Image.Image, rng: random.Random, strength: float) -> Image.Image:
    """``img`` with grey Gaussian noise of standard deviation ``strength`` (sensor grain)."""
    arr = np.array(img, dtype=np.float32)
    gen = np.random.default_rng(rng.getrandbits(32))
    arr += strength * gen.standard_normal(size=arr.shape[:2] + (1,), dtype=np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), img.mode)


def background(side: int, rng: random.Random) -> Image.Image:
    """A square backdrop: studio white or any colour, often with a vertical gradient."""
    top = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
    if rng.random() < 0.4:  # studio white, as many real listings
        top = jitter((245, 245, 245), rng, 8)
    bottom = jitter(top, rng, 50) if rng.random() < 0.6 else top
    ramp = np.linspace(0, 1, side, dtype=np.float32)[:, None, None]
    arr = np.array(top, np.float32) * (1 - ramp) + np.array(bottom, np.float32) * ramp
    arr = np.broadcast_to(arr, (side, side, 3))
    return noise(Image.fromarray(arr.astype(np.uint8), "RGB"), rng, 4)


# --- fabrics -------------------------------------------------------------------------------------------


def plain_fabric(side: int, colour: RGB, rng: random.Random) -> Image.Image:
    """Plain cloth of one colour."""
    return noise(Image.new("RGB", (side, side), colour), rng, 5)


def checks_fabric(side: int, colour: RGB, rng: random.Random) -> Image.Image:
    """Checked cloth: a grid of lines in a contrasting colour."""
    img = Image.new("RGB", (side, side), colour)
    draw = ImageDraw.Draw(img)
    line = jitter(tuple(255 - c for c in colour), rng, 40)  # type: ignore[arg-type]
    step, width = rng.randint(10, 26), rng.randint(1, 3)
    for x in range(0, side, step):
        draw.line([(x, 0), (x, side)], fill=line, width=width)
        draw.line([(0, x), (side, x)], fill=line, width=width)
    return noise(img, rng, 4)


def stripes_fabric(side: int, colour: RGB, rng: random.Random) -> Image.Image:
    """Pinstriped cloth."""
    img = Image.new("RGB", (side, side), colour)
    draw = ImageDraw.Draw(img)
    line = jitter(colour, rng, 70)
    step = rng.randint(5, 14)
    for x in range(0, side, step):
        draw.line([(x, 0), (x, side)], fill=line, width=1)
    return noise(img, rng, 4)


def denim_fabric(side: int, colour: RGB, rng: random.Random) -> Image.Image:
    """Denim: a diagonal twill, grain, and often a faded wash in the middle."""
    img = Image.new("RGB", (side, side), colour)
    draw = ImageDraw.Draw(img)
    light = jitter(tuple(min(255, c + 45) for c in colour), rng, 10)  # type: ignore[arg-type]
    step = rng.choice([3, 4, 5])
    for k in range(-side, side, step):  # the twill diagonal
        draw.line([(k, 0), (k + side, side)], fill=light, width=1)
    img = noise(img, rng, 10)
    if rng.random() < 0.7:  # faded wash in the middle of each leg
        fade = Image.new("L", (side, side), 0)
        ImageDraw.Draw(fade).ellipse([side * 0.15, side * 0.3, side * 0.85, side * 0.8], fill=rng.randint(40, 110))
        fade = fade.filter(ImageFilter.GaussianBlur(side / 10))
        img = Image.composite(Image.new("RGB", img.size, (200, 210, 225)), img, fade)
    return img


def saree_fabric(side: int, colour: RGB, rng: random.Random) -> Image.Image:
    """Woven silk with a repeated motif (dots, diamonds or flowers) in gold, white or a contrast colour."""
    img = Image.new("RGB", (side, side), colour)
    draw = ImageDraw.Draw(img)
    motif = rng.choice(GOLD + [jitter((255, 255, 255), rng, 20), jitter(colour, rng, 90)])
    step = rng.randint(14, 30)
    shape = rng.choice(["dot", "diamond", "flower", "none"])
    for y in range(step // 2, side, step):
        for x in range((y // step % 2) * step // 2, side, step):
            r = step // 5
            if shape == "dot":
                draw.ellipse([x - r, y - r, x + r, y + r], fill=motif)
            elif shape == "diamond":
                draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=motif)
            elif shape == "flower":
                for dx, dy in ((r, 0), (-r, 0), (0, r), (0, -r)):
                    draw.ellipse([x + dx - r // 2, y + dy - r // 2, x + dx + r // 2, y + dy + r // 2], fill=motif)
    return noise(img, rng, 4)


def paste_shape(canvas: Image.Image, fabric: Image.Image, polygon: list[tuple[float, float]]) -> None:
    """Cut ``polygon`` out of ``fabric`` and paste it onto ``canvas``."""
    mask = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(mask).polygon(polygon, fill=255)
    canvas.paste(fabric if fabric.size == canvas.size else fabric.resize(canvas.size), (0, 0), mask)
