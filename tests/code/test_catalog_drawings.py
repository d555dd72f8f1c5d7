"""The catalog's drawings: deterministic per seed, varied across seeds, no trivial colour cue."""

from __future__ import annotations

import numpy as np
import pytest

from catalog.draw import draw_product
from catalog.settings import DRAWN_CLASSES, CatalogConfig


@pytest.mark.parametrize("label", DRAWN_CLASSES)
def test_same_seed_same_photo(label: str) -> None:
    a = np.asarray(draw_product(label, 11, 96))
    b = np.asarray(draw_product(label, 11, 96))
    c = np.asarray(draw_product(label, 12, 96))
    assert a.shape == (96, 96, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_mean_colour_does_not_separate_classes() -> None:
    """A nearest-class-mean classifier on average RGB must stay far from perfect."""
    means = {
        label: np.array([np.asarray(draw_product(label, s, 64)).reshape(-1, 3).mean(0) for s in range(60)])
        for label in DRAWN_CLASSES
    }
    centroids = {label: m[:30].mean(0) for label, m in means.items()}
    correct = total = 0
    for label, m in means.items():
        for x in m[30:]:
            guess = min(centroids, key=lambda c: np.linalg.norm(x - centroids[c]))
            correct += guess == label
            total += 1
    assert correct / total < 0.75


def test_unknown_label_is_refused() -> None:
    with pytest.raises(ValueError, match="saree, trousers or jeans"):
        draw_product("shoes", 1)


def test_a_photo_cache_serves_each_drawing_from_its_file(tmp_path) -> None:
    """With ``photo_cache_dir`` a photo is drawn once, kept as a file, and served from the file after that."""
    import requests

    from catalog import running_catalog

    config = CatalogConfig(products_per_class=3, image_side=64, port=0, photo_cache_dir=str(tmp_path / "photos"))
    with running_catalog(config) as server:
        product = next(iter(server.catalog.by_image_id))
        url = f"{server.base_url}/images/I/{product}.jpg"
        first = requests.get(url, timeout=10).content
        cached = list((tmp_path / "photos").glob("*.jpg"))
        assert len(cached) == 1 and cached[0].read_bytes() == first
        cached[0].write_bytes(b"from the file")
        server.photo.cache_clear()  # the in-memory cache in front of the files
        assert requests.get(url, timeout=10).content == b"from the file"
