"""Batch scoring of image files (``stj predict``): with a loaded model, or by asking a running server.

Each file becomes one :class:`Scored` row: its label and every class's probability, whether it looks like the
training photos (``in_distribution``, ``ood_score``: blank for a model without a "none of these" index), or
why it could not be scored (a file that is not an image does not stop the others).
"""

from __future__ import annotations

import csv
import glob
import io
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import requests

from serving.errors import ApiError
from serving.uploads import decode_upload

if TYPE_CHECKING:  # TensorFlow loads with it: `stj predict --url` needs none of it
    from serving.predictor import Assessed, Predictor

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
BATCH = 16


class NoImages(ValueError):
    """The paths given name no image file."""


@dataclass
class Scored:
    """One file's result: ``label``, ``probabilities`` and the "none of these" verdict, or ``error``."""

    file: str
    label: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    in_distribution: bool | None = None
    ood_score: float | None = None


def expand_paths(paths: Iterable[str]) -> list[Path]:
    """Files, folders (searched recursively for images) and glob patterns, in order, each file once.

    Raises:
        NoImages: a path matches nothing, or nothing matched is an image file.
    """
    found: dict[Path, None] = {}
    for given in paths:
        matches = [Path(p) for p in sorted(glob.glob(given, recursive=True))] or [Path(given)]
        for match in matches:
            if match.is_dir():
                for file in sorted(match.rglob("*")):
                    if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
                        found.setdefault(file)
            elif match.is_file():
                found.setdefault(match)
            else:
                raise NoImages(f"{given}: no such file, folder or match")
    if not found:
        raise NoImages(f"no image files in {', '.join(paths)}")
    return list(found)


def _row(file: Path, assessed: Assessed, row: int, class_names: list[str]) -> Scored:
    probs = assessed.probs[row]
    best = int(np.argmax(probs))
    return Scored(
        file=str(file),
        label=class_names[best],
        confidence=round(float(probs[best]), 6),
        probabilities={name: round(float(p), 6) for name, p in zip(class_names, probs, strict=True)},
        **assessed.verdict(row),
    )


def score_with_model(predictor: Predictor, files: list[Path]) -> Iterator[Scored]:
    """Score ``files`` in batches with a loaded model; rows come in the files' order."""
    for start in range(0, len(files), BATCH):
        chunk, pixels, failed = files[start : start + BATCH], [], {}
        for file in chunk:
            try:  # decoded as the server decodes an upload, so both give the same numbers
                data = file.read_bytes()
                pixels.append(decode_upload(data, predictor.image_size, name=file.name, resize=predictor.resize))
            except ApiError as exc:
                failed[file] = f"not scored: {exc.message}"
            except OSError as exc:
                failed[file] = f"not scored: {exc}"
        assessed = predictor.assess(np.stack(pixels)) if pixels else None
        row = 0
        for file in chunk:
            if file in failed:
                yield Scored(file=str(file), error=failed[file])
            else:
                yield _row(file, assessed, row, predictor.class_names)
                row += 1


def _ask_server(session: requests.Session, url: str, top_k: int, file: Path) -> Scored:
    try:
        with file.open("rb") as handle:
            response = session.post(
                f"{url}/predict", params={"top_k": top_k}, files={"image": (file.name, handle)}, timeout=60
            )
        body = response.json()
    except (OSError, requests.RequestException, ValueError) as exc:
        return Scored(file=str(file), error=f"not scored: {exc}")
    if not response.ok:
        return Scored(file=str(file), error=f"HTTP {response.status_code}: {body.get('error', {}).get('message')}")
    ranked = body["top_k"]
    return Scored(
        file=str(file),
        label=body["label"],
        confidence=body["confidence"],
        probabilities={item["label"]: item["probability"] for item in ranked},
        in_distribution=body.get("in_distribution"),
        ood_score=body.get("ood_score"),
    )


def server_classes(url: str) -> list[str]:
    """The class names a running server's model predicts (its ``/metadata``).

    Raises:
        requests.RequestException: the server cannot be reached or does not answer as ``stj serve`` does.
    """
    response = requests.get(f"{url.rstrip('/')}/metadata", timeout=10)
    response.raise_for_status()
    return list(response.json()["classes"])


def score_with_server(url: str, files: list[Path], classes: list[str], concurrency: int = 4) -> Iterator[Scored]:
    """Score ``files`` by POSTing each to ``url``/predict (every class's probability asked for), a few at
    a time; rows come in the files' order."""
    url = url.rstrip("/")
    with requests.Session() as session, ThreadPoolExecutor(max_workers=concurrency) as pool:
        yield from pool.map(lambda file: _ask_server(session, url, len(classes), file), files)


def write_rows(rows: Iterable[Scored], out: io.TextIOBase, fmt: str, class_names: list[str]) -> int:
    """Write rows as CSV (``file,label,confidence,in_distribution,ood_score,<class>...,error``) or JSON lines;
    returns how many."""
    writer = csv.writer(out) if fmt == "csv" else None
    if writer:
        writer.writerow(["file", "label", "confidence", "in_distribution", "ood_score", *class_names, "error"])
    count = 0
    for row in rows:
        count += 1
        if writer is None:
            out.write(json.dumps({k: v for k, v in row.__dict__.items() if v not in (None, {})}) + "\n")
        else:
            probs = [row.probabilities.get(name, "") for name in class_names]
            verdict = [_blank(row.in_distribution), _blank(row.ood_score)]
            writer.writerow([row.file, row.label or "", _blank(row.confidence), *verdict, *probs, row.error or ""])
    return count


def _blank(value: float | bool | None) -> float | str:
    return "" if value is None else str(value).lower() if isinstance(value, bool) else value
