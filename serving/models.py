"""The models a server answers with, and which one a request asks for.

``stj`` (the default) is ``serve.model_uri``, STJ's classifier at its alias; ``imagenet`` is the ImageNet
top-5 model (``tracking.imagenet_model`` at the same alias), served when it is registered. Each follows its
alias (hot reload) and has its own inference queue. ``?version=N`` pins a registered version of either,
loaded on first use and kept among the last :data:`PINNED_KEPT` pinned versions. ``N`` is ASCII digits,
normalised before the lookup (``01`` is version 1: one load); loads of pinned versions are limited per worker
to ``serve.pinned_loads_per_minute`` (beyond it a JSON 429 with ``Retry-After``), so clients cannot keep a
server reloading.

Config keys: ``serve.model_uri``, ``serve.runtime``, ``serve.reload_interval_s``,
``serve.pinned_loads_per_minute``, ``tracking.model_name``,
``tracking.imagenet_model``, ``tracking.alias``, ``tracking.uri``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from configs.schema import Config
from core.aliases import is_registered, version_number
from serving.errors import ApiError
from serving.inference import InferenceService
from serving.predictor import Predictor, alias_version
from serving.reloader import ModelHolder, start_reloader

log = logging.getLogger(__name__)

DEFAULT, IMAGENET = "stj", "imagenet"
IMAGENET_TOP_K = 5  # the ImageNet model answers its top five unless asked otherwise
PINNED_KEPT = 2
LOAD_WINDOW_S = 60.0


@dataclass(frozen=True)
class Route:
    """One model a request can be answered with: the predictor to use now and its inference queue."""

    key: str
    current: Callable[[], Predictor]
    inference: InferenceService
    default_top_k: int


class ModelRoutes:
    """The followed models by key, and versions pinned by requests."""

    def __init__(self, config: Config, followed: dict[str, ModelHolder], on_batch: Callable[[int], None]) -> None:
        self.config, self.on_batch = config, on_batch
        self.holders = followed
        self.routes = {key: self._route(key, holder.current) for key, holder in followed.items()}
        self._pinned: OrderedDict[tuple[str, str], Route] = OrderedDict()
        self._lock = threading.Lock()  # one load per pinned version, even with concurrent requests
        self._loads: deque[float] = deque()  # when pinned versions were loaded, over the last minute

    def _route(self, key: str, current: Callable[[], Predictor]) -> Route:
        top_k = IMAGENET_TOP_K if key == IMAGENET else self.config.serve.top_k
        return Route(key, current, InferenceService(self.config.serve, self.on_batch), top_k)

    @property
    def default(self) -> ModelHolder:
        """The holder of STJ's classifier."""
        return self.holders[DEFAULT]

    def route(self, key: str | None, version: str | None) -> Route:
        """The route for ``?model=`` and ``?version=``; 404 JSON for an unknown model or version."""
        key = key or DEFAULT
        if key not in self.routes:
            known = ", ".join(sorted(self.routes))
            raise ApiError(404, "unknown_model", f"no model {key!r} is served here (served: {known})")
        route = self.routes[key]
        if version is None:
            return route
        number = version_number(version)  # 01, 001, … are version 1
        if number is None:
            raise ApiError(404, "unknown_version", f"version must be a registered version number, not {version!r}")
        version = number
        if version == str(route.current().ref.version):
            return route
        with self._lock:
            pinned = self._pinned.get((key, version))
            if pinned is None:
                name = self._registered(key, version)  # an unknown version costs no load
                self._admit_load()
                predictor = Predictor.load(
                    f"models:/{name}/{version}", self.config.tracking.uri, self.config.serve.runtime
                )
                pinned = self._pinned[key, version] = self._route(key, lambda: predictor)
                while len(self._pinned) > PINNED_KEPT:
                    self._pinned.popitem(last=False)[1].inference.close()
            self._pinned.move_to_end((key, version))
            return pinned

    def _admit_load(self) -> None:
        """Count a pinned version's load against this worker's limit per minute, or refuse it (429)."""
        now = time.monotonic()
        while self._loads and self._loads[0] <= now - LOAD_WINDOW_S:
            self._loads.popleft()
        if len(self._loads) >= self.config.serve.pinned_loads_per_minute:
            wait = int(self._loads[0] + LOAD_WINDOW_S - now) + 1 if self._loads else int(LOAD_WINDOW_S)
            raise ApiError(
                429,
                "too_many_model_loads",
                f"this server loads at most {self.config.serve.pinned_loads_per_minute} pinned versions a minute; "
                f"try again in {wait} s, or ask for the current version",
                {"Retry-After": str(wait)},
            )
        self._loads.append(now)

    def _registered(self, key: str, version: str) -> str:
        """The registered name of ``key``'s model, if it has ``version``; else 404."""
        name = self.routes[key].current().ref.name
        if not is_registered(MlflowClient(tracking_uri=self.config.tracking.uri), name, version):
            raise ApiError(404, "unknown_version", f"{name} has no version {version}")
        return name

    def describe(self) -> dict[str, dict]:
        """Each followed model's name and current version, for ``/metadata`` and the page's picker."""
        return {
            key: {
                "name": route.current().ref.name,
                "version": route.current().ref.version,
                "classes": len(route.current().class_names),
            }
            for key, route in self.routes.items()
        }


def follow(uri: str, config: Config, on_swap: Callable[[Predictor], None]) -> ModelHolder:
    """Load the model at ``uri`` (an alias, usually) and keep following it in the background."""
    serve, tracking_uri = config.serve, config.tracking.uri
    holder = ModelHolder(Predictor.load(uri, tracking_uri, serve.runtime), on_swap=on_swap)
    start_reloader(
        holder=holder,
        latest_version=lambda: alias_version(uri, tracking_uri),
        load=lambda version: Predictor.load(
            f"models:/{holder.current().ref.name}/{version}", tracking_uri, serve.runtime
        ),
        interval_s=serve.reload_interval_s,
    )
    return holder


def load_followed(config: Config, on_swap: Callable[[Predictor], None]) -> dict[str, ModelHolder]:
    """STJ's classifier (required), and the ImageNet model when the registry has it."""
    followed = {DEFAULT: follow(config.model_uri, config, on_swap)}
    name = config.tracking.imagenet_model
    if name:
        uri = f"models:/{name}@{config.tracking.alias}"
        try:
            followed[IMAGENET] = follow(uri, config, on_swap=lambda predictor: None)
        except MlflowException:
            log.info("no ImageNet model at %s: serving %s only", uri, config.model_uri)
    return followed
