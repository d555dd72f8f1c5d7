"""The served STJ model for the page's offline mode: ONNX, run in the browser by onnxruntime-web.

ONNX rather than TF.js: tf2onnx is already STJ's pinned exporter for Keras 3 (``stj export --format onnx``,
checked against onnxruntime), while the TF.js converter does not install beside this TensorFlow. The
browser runtime is onnxruntime-web's WebAssembly build (vendored, 14 MB, cached once by the service worker).

Each served version is exported once into ``serve.browser_model_dir`` (a ``<name>-<version>`` folder,
renamed into place whole; a file lock makes workers wait for one export instead of racing) and kept: a
version's weights never change, so its URL is cached for good. The export runs in a background thread, started
by the first request for the version's description, which is answered 503 with ``Retry-After`` until the file
is ready: no request waits seconds for an export.

Config keys: ``serve.browser_model``, ``serve.browser_model_dir``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
from pathlib import Path
from typing import Any

from core.export import DESCRIPTION, export_model
from core.logged_model import LoggedModel
from serving.errors import ApiError

FILE = "model.onnx"
RETRY_AFTER_S = 5
log = logging.getLogger(__name__)


class BrowserModels:
    """ONNX exports of served versions, made on demand and kept in ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._lock, self._exporting = threading.Lock(), threading.Lock()
        self._started: set[str] = set()  # versions whose export is under way or done, by folder name

    def export(self, predictor: Any) -> Path:
        """The folder holding ``predictor``'s ONNX file and its ``stj.json`` (exported now if missing)."""
        ref = predictor.ref
        final = self.folder / _folder_name(ref)
        if (final / "onnx" / FILE).exists():
            return final / "onnx"
        self.folder.mkdir(parents=True, exist_ok=True)
        # one export at a time: threads of this worker (the lock), and other workers (the file lock)
        with self._exporting, open(self.folder / ".export.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (final / "onnx" / FILE).exists():  # another worker may have made it while this one waited
                logged = LoggedModel(
                    predictor.model, predictor.class_names, predictor.image_size, None, resize=predictor.resize
                )
                export_model(logged, "onnx", final, source=ref.uri)
        return final / "onnx"

    def ready(self, predictor: Any) -> Path | None:
        """The folder of ``predictor``'s export if it is made; else ``None``, and its export is under way."""
        name = _folder_name(predictor.ref)
        final = self.folder / name / "onnx"
        if (final / FILE).exists():
            return final
        with self._lock:
            if name not in self._started:
                self._started.add(name)
                threading.Thread(target=self._export_logged, args=(predictor,), daemon=True).start()
        return None

    def _export_logged(self, predictor: Any) -> None:
        try:
            self.export(predictor)
        except Exception:  # the next request starts it again
            log.exception("exporting %s version %s for browsers failed", predictor.ref.name, predictor.ref.version)
            with self._lock:
                self._started.discard(_folder_name(predictor.ref))

    def describe(self, predictor: Any) -> dict:
        """What the page needs to run ``predictor`` itself: the file's URL, classes, input size and resize;
        503 ``browser_model_preparing`` (with ``Retry-After``) while it is being exported."""
        folder = self.ready(predictor)
        if folder is None:
            raise ApiError(
                503,
                "browser_model_preparing",
                "the model for the browser is being prepared; try again in a few seconds",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        description = json.loads((folder / DESCRIPTION).read_text())
        ref = predictor.ref
        return {
            "name": ref.name,
            "version": str(ref.version),
            "url": f"/browser-model/{ref.name}/{ref.version}/{FILE}",
            "bytes": (folder / FILE).stat().st_size,
            "class_names": description["class_names"],
            "image_size": description["input"]["image_size"],
            "resize": description["input"]["resize"],
        }


def _folder_name(ref: Any) -> str:
    """Where a version's export lives under ``serve.browser_model_dir``."""
    return f"{ref.name}-{ref.version}"
