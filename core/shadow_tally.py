"""What a challenger did in shadow, kept in the model registry beside the version it is about.

Every serving worker that mirrors traffic to ``@challenger`` (:mod:`serving.shadow`) writes its running tally
as one model-version tag on the challenger's version, ``shadow.<champion version>.<worker>``, a small JSON
object: photos scored, how many agreed with the champion's top-1 (by the champion's class), photos dropped
because the shadow queue was full, and the challenger's latency. Agreement is always against one champion
version: when ``@champion`` moves, the counts start again under the new version's key. ``stj status``, ``/about`` and ``stj promote challenger`` add the tags
up: every replica sharing the store is counted, with no second database.

Cost: one registry write per worker per report interval; reading is one registry read, O(workers) tags.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

PREFIX = "shadow."


@dataclass
class ShadowTally:
    """Counts of one worker (or, added up, of all of them) for one challenger version."""

    scored: int = 0
    agreed: int = 0
    dropped: int = 0
    # by the champion's top-1 class: [scored, agreed]
    classes: dict[str, list[int]] = field(default_factory=dict)
    p95_ms: float = 0.0  # a challenger call's latency (decode and score a few photos), 95th percentile (the largest over workers when added)

    @property
    def agreement(self) -> float | None:
        """Share of the scored photos on whose top-1 the challenger and the champion agreed; ``None`` before any."""
        return self.agreed / self.scored if self.scored else None

    def count(self, champion_label: str, agreed: bool) -> None:
        """Add one photo scored by both models."""
        self.scored += 1
        self.agreed += int(agreed)
        seen = self.classes.setdefault(champion_label, [0, 0])
        seen[0] += 1
        seen[1] += int(agreed)

    def add(self, other: ShadowTally) -> None:
        """Add another worker's counts to these."""
        self.scored += other.scored
        self.agreed += other.agreed
        self.dropped += other.dropped
        for label, (scored, agreed) in other.classes.items():
            seen = self.classes.setdefault(label, [0, 0])
            seen[0] += scored
            seen[1] += agreed
        self.p95_ms = max(self.p95_ms, other.p95_ms)

    def to_json(self) -> str:
        """The tag value."""
        return json.dumps(asdict(self), sort_keys=True)


def report_tally(
    client: MlflowClient, model: str, version: str, champion: str, worker: str, tally: ShadowTally
) -> None:
    """Write one worker's tally of ``model`` ``version`` against champion version ``champion`` on the
    challenger's version (it replaces that worker's previous one)."""
    client.set_model_version_tag(model, version, f"{PREFIX}{champion}.{worker}", tally.to_json())


def shadow_totals(client: MlflowClient, model: str, version: str, champion: str) -> ShadowTally:
    """Every worker's tally of ``model`` ``version`` against champion version ``champion``, added up (all zero
    when nothing was mirrored yet, or the version does not exist)."""
    total, prefix = ShadowTally(), f"{PREFIX}{champion}."
    try:
        tags = client.get_model_version(model, version).tags
    except MlflowException:
        return total
    for key, value in sorted(tags.items()):
        if key.startswith(prefix):
            total.add(ShadowTally(**json.loads(value)))
    return total
