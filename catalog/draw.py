"""Deterministic product photos for the local catalog: sarees, trousers and jeans.

Each photo is drawn from a seed, so the catalog is the same on every machine. The classes overlap in the
cues a lazy classifier would use: every class gets any background, position, scale and rotation; blue
chinos and black or grey jeans exist; trousers can be checked or striped; sarees are draped on a figure,
folded in a stack, worn, or spread out. What separates the classes is the garment itself: shape, borders,
motifs, denim twill, contrast stitching and rivets. Fabrics and colours live in ``catalog.fabrics``.

Config keys: ``catalog.image_side`` (size of the full image).
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from catalog.fabrics import (
    CHINO_COLOURS,
    DENIM_COLOURS,
    GOLD,
    SAREE_COLOURS,
    SHIRT_COLOURS,
    SKIN,
    background,
    checks_fabric,
    denim_fabric,
    jitter,
    paste_shape,
    plain_fabric,
    saree_fabric,
    stripes_fabric,
)

# --- garments (drawn on a transparent square layer of size `s`) -------------------------------------


def _legs(s: int, rng: random.Random) -> tuple[list[tuple[float, float]], float, float]:
    """Outline of a pair of trousers laid flat; returns polygon, waist y, hem y."""
    top, bottom = s * 0.08, s * rng.uniform(0.88, 0.95)
    waist = s * rng.uniform(0.22, 0.3)
    hem = s * rng.uniform(0.08, 0.16)  # half-width of one hem: skinny to wide
    crotch = s * rng.uniform(0.38, 0.46)
    cx = s / 2
    gap = s * 0.02
    return (
        [
            (cx - waist, top),
            (cx + waist, top),
            (cx + waist + s * 0.02, crotch),
            (cx + gap + 2 * hem, bottom),
            (cx + gap, bottom),
            (cx, crotch + s * 0.04),
            (cx - gap, bottom),
            (cx - gap - 2 * hem, bottom),
            (cx - waist - s * 0.02, crotch),
        ],
        top,
        bottom,
    )


def _trousers_layer(s: int, rng: random.Random, denim: bool) -> Image.Image:
    layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    if denim:
        colour = jitter(rng.choice(DENIM_COLOURS), rng, 12)
        fabric = denim_fabric(s, colour, rng)
    else:
        colour = jitter(rng.choice(CHINO_COLOURS), rng, 12)
        fabric = rng.choices([plain_fabric, checks_fabric, stripes_fabric], weights=[6, 2, 2])[0](s, colour, rng)
    polygon, top, bottom = _legs(s, rng)
    paste_shape(layer, fabric, polygon)
    draw = ImageDraw.Draw(layer)
    cx = s / 2
    waist_left, waist_right = polygon[0][0], polygon[1][0]
    band = s * 0.05
    darker = tuple(max(0, c - 35) for c in colour) + (255,)
    draw.rectangle([waist_left, top, waist_right, top + band], outline=darker, width=2)
    for k in range(5):  # belt loops
        x = waist_left + (waist_right - waist_left) * (k + 0.5) / 5
        draw.rectangle([x - 2, top - 2, x + 2, top + band + 3], fill=darker)
    draw.line([(cx, top + band), (cx, top + s * 0.2)], fill=darker, width=2)  # fly
    if denim:
        stitch = rng.choice(GOLD + [(220, 120, 40), (240, 240, 240)]) + (255,)
        for x0, x1 in ((waist_left + 8, cx - s * 0.1), (waist_right - 8, cx + s * 0.1)):  # front pockets
            draw.arc(
                [min(x0, x1), top + band - s * 0.08, max(x0, x1), top + band + s * 0.1], 0, 180, fill=stitch, width=2
            )
        for edge in (polygon[2:5], polygon[6:9]):  # side and inseam stitching, dashed
            for (xa, ya), (xb, yb) in zip(edge, edge[1:], strict=False):
                n = 24
                for i in range(0, n, 2):
                    draw.line(
                        [
                            (xa + (xb - xa) * i / n, ya + (yb - ya) * i / n),
                            (xa + (xb - xa) * (i + 1) / n, ya + (yb - ya) * (i + 1) / n),
                        ],
                        fill=stitch,
                        width=2,
                    )
        for x in (waist_left + s * 0.06, waist_right - s * 0.06):  # rivets
            r = s * 0.012
            draw.ellipse([x - r, top + band + s * 0.03 - r, x + r, top + band + s * 0.03 + r], fill=(184, 115, 51, 255))
        if rng.random() < 0.6:  # whiskers
            for k in range(4):
                y = top + s * (0.3 + 0.025 * k)
                draw.line([(cx - s * 0.16, y), (cx - s * 0.04, y + 6)], fill=(210, 220, 235, 160), width=2)
                draw.line([(cx + s * 0.16, y), (cx + s * 0.04, y + 6)], fill=(210, 220, 235, 160), width=2)
    else:
        light = tuple(min(255, c + 30) for c in colour) + (200,)
        for x in (cx - s * 0.12, cx + s * 0.12):  # pressed crease
            draw.line([(x, top + s * 0.3), (x, bottom - 4)], fill=light, width=1)
        draw.line([(waist_left + 6, top + band + 4), (waist_left + s * 0.08, top + s * 0.18)], fill=darker, width=2)
        draw.line([(waist_right - 6, top + band + 4), (waist_right - s * 0.08, top + s * 0.18)], fill=darker, width=2)
    return layer


def _saree_layer(s: int, rng: random.Random) -> Image.Image:
    layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    colour = jitter(rng.choice(SAREE_COLOURS), rng, 15)
    fabric = saree_fabric(s, colour, rng)
    border = rng.choice(GOLD + [jitter(tuple(255 - c for c in colour), rng, 30)])  # type: ignore[arg-type]
    bw = max(3, int(s * rng.uniform(0.025, 0.06)))
    draw = ImageDraw.Draw(layer)
    style = rng.choice(["draped", "folded", "worn", "spread"])
    if style == "folded":
        n = rng.randint(1, 4)
        w, h = s * rng.uniform(0.55, 0.8), s * rng.uniform(0.3, 0.5)
        x0, y0 = (s - w) / 2, (s - h) / 2
        for k in range(n - 1, -1, -1):
            off = k * s * 0.04
            box = [
                (x0 + off, y0 - off),
                (x0 + w + off, y0 - off),
                (x0 + w + off, y0 + h - off),
                (x0 + off, y0 + h - off),
            ]
            paste_shape(layer, fabric, box)
            draw.rectangle([x0 + off, y0 + h - off - bw, x0 + w + off, y0 + h - off], fill=border)
            draw.rectangle([x0 + off, y0 - off, x0 + w + off, y0 - off + bw // 2], fill=border)
        return layer
    if style == "spread":
        pts = [(s * 0.05, s * 0.35), (s * 0.95, s * 0.15), (s * 0.95, s * 0.55), (s * 0.05, s * 0.8)]
        paste_shape(layer, fabric, pts)
        draw.line([pts[3], pts[2]], fill=border, width=bw)
        draw.line([pts[0], pts[1]], fill=border, width=bw)
        pallu = [pts[1], pts[2], (s * 0.75, s * 0.6), (s * 0.75, s * 0.2)]
        draw.polygon(pallu, fill=border)
        return layer
    # draped on a dress form, or worn by a figure: pleated skirt plus a pallu over the left shoulder
    cx = s / 2
    if style == "worn":
        skin = jitter(rng.choice(SKIN), rng, 10)
        draw.ellipse([cx - s * 0.07, s * 0.02, cx + s * 0.07, s * 0.17], fill=skin)
        draw.rectangle([cx - s * 0.03, s * 0.15, cx + s * 0.03, s * 0.2], fill=skin)
        draw.polygon([(cx - s * 0.22, s * 0.5), (cx - s * 0.26, s * 0.3), (cx - s * 0.3, s * 0.52)], fill=skin)
    else:
        draw.rectangle([cx - s * 0.01, s * 0.02, cx + s * 0.01, s * 0.2], fill=(90, 90, 90))
    torso = [(cx - s * 0.14, s * 0.2), (cx + s * 0.14, s * 0.2), (cx + s * 0.12, s * 0.45), (cx - s * 0.12, s * 0.45)]
    draw.polygon(torso, fill=jitter(rng.choice(GOLD + SAREE_COLOURS), rng, 20))
    skirt = [(cx - s * 0.13, s * 0.42), (cx + s * 0.13, s * 0.42), (cx + s * 0.24, s * 0.97), (cx - s * 0.24, s * 0.97)]
    paste_shape(layer, fabric, skirt)
    draw.line([(cx - s * 0.24, s * 0.96), (cx + s * 0.24, s * 0.96)], fill=border, width=bw)
    for k in range(rng.randint(3, 7)):  # pleats
        x = cx - s * 0.06 + k * s * 0.025
        draw.line([(x, s * 0.5), (x + (k - 3) * s * 0.01, s * 0.94)], fill=jitter(colour, rng, 40), width=2)
    pallu = [
        (cx - s * 0.14, s * 0.2),
        (cx - s * 0.04, s * 0.2),
        (cx + s * 0.14, s * 0.44),
        (cx + s * 0.16, s * 0.75),
        (cx + s * 0.05, s * 0.7),
        (cx + s * 0.02, s * 0.46),
    ]
    paste_shape(layer, fabric, pallu)
    draw.line([pallu[2], pallu[3]], fill=border, width=bw)
    draw.line([pallu[0], pallu[5]], fill=border, width=max(2, bw // 2))
    return layer


def _worn_layer(s: int, rng: random.Random, denim: bool) -> Image.Image:
    """Trousers or jeans under a shirt and over shoes, as on a model."""
    layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    legs = _trousers_layer(s, rng, denim).resize((int(s * 0.8), int(s * 0.8)))
    layer.paste(legs, (int(s * 0.1), int(s * 0.2)), legs)
    draw = ImageDraw.Draw(layer)
    shirt = jitter(rng.choice(SHIRT_COLOURS), rng, 20)
    draw.polygon([(s * 0.3, 0), (s * 0.7, 0), (s * 0.72, s * 0.3), (s * 0.28, s * 0.3)], fill=shirt)
    shoe = jitter(rng.choice([(30, 30, 30), (120, 70, 40), (240, 240, 240)]), rng, 10)
    for x in (s * 0.36, s * 0.56):
        draw.ellipse([x - s * 0.06, s * 0.9, x + s * 0.08, s * 0.99], fill=shoe)
    return layer


def alter(img: Image.Image, variant: int) -> Image.Image:
    """A near-duplicate of a photo, as when a seller re-uploads it: smaller, slightly brighter, recompressed."""
    if variant <= 0:
        return img
    w, h = img.size
    factor = 1 - 0.07 * variant
    out = img.resize((int(w * factor), int(h * factor)), Image.LANCZOS)
    out = ImageEnhance.Brightness(out).enhance(1 + 0.02 * variant)
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=80)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def draw_product_with_box(label: str, seed: int, side: int = 400) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Draw one product photo, and the box (left, top, right, bottom) the garment covers in it.

    Args:
        label: ``saree``, ``trousers`` or ``jeans``.
        seed: the product's seed; the same seed gives the same photo.
        side: width and height of the photo in pixels.
    """
    rng = random.Random(f"{label}:{seed}")
    work = side * 3 // 2  # draw larger, then scale down: smooth edges
    if label == "saree":
        layer = _saree_layer(work, rng)
    elif label in ("trousers", "jeans"):
        denim = label == "jeans"
        layer = _worn_layer(work, rng, denim) if rng.random() < 0.3 else _trousers_layer(work, rng, denim)
    else:
        raise ValueError(f"the catalog draws saree, trousers or jeans, not {label!r}")
    angle = rng.uniform(-30, 30)
    scale = rng.uniform(0.55, 1.0)
    size = max(8, int(side * scale))
    # Scale down first, then rotate: the same picture at a quarter or less of the rotation's cost (measured:
    # rotating the double-size layer was 59 of the 141 ms a photo took).
    layer = layer.resize((size, size), Image.LANCZOS).rotate(angle, resample=Image.BICUBIC, expand=False)
    canvas = background(side, rng)
    x = rng.randint(min(0, side - size), max(0, side - size))
    y = rng.randint(min(0, side - size), max(0, side - size))
    canvas.paste(layer, (x, y), layer)
    if rng.random() < 0.3:  # camera softness
        canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    left, top, right, bottom = layer.getchannel("A").getbbox() or (0, 0, size, size)
    box = (max(0, x + left), max(0, y + top), min(side, x + right), min(side, y + bottom))
    return canvas, box


def draw_product(label: str, seed: int, side: int = 400) -> Image.Image:
    """Draw one product photo (see :func:`draw_product_with_box`); an RGB image."""
    return draw_product_with_box(label, seed, side)[0]
