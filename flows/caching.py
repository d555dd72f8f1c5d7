"""Prefect cache policies for tasks whose output is a function of their inputs and of files in the data
folder. A cached result is reused only while those files are byte-for-byte unchanged, so a hit can never
hand back a split that no longer matches the manifest or that was deleted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy


@dataclass
class DataFiles(CachePolicy):
    """Keys a task on the content of ``names`` under its ``config`` input's ``project.data_dir`` (an absent
    file counts as a value of its own)."""

    names: tuple[str, ...] = ()

    def compute_key(self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any) -> str:
        """sha256 over each file's name and bytes."""
        data_dir = Path(inputs["config"].project.data_dir)
        digest = hashlib.sha256()
        for name in self.names:
            path = data_dir / name
            digest.update(name.encode() + b"\0")
            digest.update(path.read_bytes() if path.exists() else b"\0absent\0")
        return digest.hexdigest()


def inputs_and_files(*names: str) -> CachePolicy:
    """The task's code, its inputs (the config included) and the named data files."""
    return TASK_SOURCE + INPUTS + DataFiles(names=names)
